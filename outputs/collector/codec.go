package collector

import (
	"bytes"
	"compress/gzip"
	"fmt"

	"github.com/klauspost/compress/zstd"
)

// Codec compresses batch bodies: zstd (the default: on the shipper's path
// it costs less CPU than gzip and packs ~11× against gzip's ~9×, see
// BenchmarkTailToBatch), gzip, or none. `true` and `false`, what the
// setting was before codecs, mean gzip and none.
type Codec string

// The codecs.
const (
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
	case CodecZstd, CodecGzip, CodecNone:
		*c = Codec(s)
		return nil
	case "":
		*c = CodecNone
		return nil
	}
	return fmt.Errorf("compression: %q is not zstd, gzip or none", s)
}

// zstdEncoder is shared: EncodeAll may be called concurrently.
var zstdEncoder, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1),
	zstd.WithWindowSize(1<<20), zstd.WithLowerEncoderMem(true)) // batches are at most a few MiB

func (c Codec) encode(body []byte) []byte {
	switch c {
	case CodecZstd:
		return zstdEncoder.EncodeAll(body, make([]byte, 0, len(body)/8))
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
	case CodecZstd, CodecGzip:
		return string(c)
	}
	return ""
}
