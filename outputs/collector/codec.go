package collector

import (
	"bytes"
	"compress/gzip"
	"fmt"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// Codec compresses batch bodies: s2 (the default), zstd, gzip, or none.
// `true` and `false`, what the setting was before codecs, mean gzip and
// none.
//
// S2 (Snappy's faster successor, Content-Encoding: s2, a block with its
// decoded length first so the collector bounds it before decoding) costs
// about a quarter of zstd's CPU for a 4.2× smaller body against zstd's 5.6×
// (a 1000-line batch of the end-to-end corpus); zstd was a third of the
// shipper's CPU, the difference between 19k and 20k lines/s under a 100m
// CPU limit. A collector of a version before the binary framing does not
// know s2 either: it is sent NDJSON with zstd.
type Codec string

// The codecs.
const (
	CodecS2   Codec = "s2"
	CodecZstd Codec = "zstd"
	CodecGzip Codec = "gzip"
	CodecNone Codec = "none"
)

// UnmarshalYAML accepts a codec name or a boolean.
func (c *Codec) UnmarshalYAML(unmarshal func(any) error) error {
	var b bool
	if unmarshal(&b) == nil {
		*c = CodecNone
		if b {
			*c = CodecGzip
		}
		return nil
	}
	var s string
	if err := unmarshal(&s); err != nil {
		return err
	}
	switch Codec(s) {
	case CodecS2, CodecZstd, CodecGzip, CodecNone:
		*c = Codec(s)
		return nil
	case "":
		*c = CodecNone
		return nil
	}
	return fmt.Errorf("compression: %q is not s2, zstd, gzip or none", s)
}

// zstdEncoder is shared: EncodeAll may be called concurrently.
var zstdEncoder, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1),
	zstd.WithWindowSize(1<<20)) // batches are at most a few MiB

// legacy is the codec for a collector of a version before the binary
// framing (and s2).
func (c Codec) legacy() Codec {
	if c == CodecS2 {
		return CodecZstd
	}
	return c
}

// encode compresses body into dst's storage when it is large enough (dst
// may be nil); with no compression it returns body.
func (c Codec) encode(dst, body []byte) []byte {
	switch c {
	case CodecS2:
		if cap(dst) < s2.MaxEncodedLen(len(body)) {
			dst = nil // s2 allocates what it needs
		}
		return s2.Encode(dst[:cap(dst)], body)
	case CodecZstd:
		return zstdEncoder.EncodeAll(body, dst[:0])
	case CodecGzip:
		var zb bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&zb, gzip.BestSpeed)
		zw.Write(body)
		zw.Close()
		return zb.Bytes()
	}
	return body
}

func (c Codec) contentEncoding() string {
	switch c {
	case CodecS2, CodecZstd, CodecGzip:
		return string(c)
	}
	return ""
}
