package collector

import (
	"bytes"
	"testing"

	"github.com/goccy/go-yaml"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

func TestCodecConfigAndRoundTrip(t *testing.T) {
	for in, want := range map[string]Codec{"s2": CodecS2, "zstd": CodecZstd, "gzip": CodecGzip, "none": CodecNone, "true": CodecGzip, "false": CodecNone} {
		var c Config
		if err := yaml.Unmarshal([]byte("compression: "+in), &c); err != nil || c.Compression != want {
			t.Fatalf("compression: %s → %q, %v; want %q", in, c.Compression, err, want)
		}
	}
	var c Config
	if err := yaml.Unmarshal([]byte("compression: lz4"), &c); err == nil {
		t.Fatal("compression: lz4 accepted")
	}
	if DefaultConfig().Compression != CodecS2 {
		t.Fatal("s2 is not the default")
	}
	if CodecS2.legacy() != CodecZstd || CodecGzip.legacy() != CodecGzip {
		t.Fatal("collectors before the framing are not sent a codec they know")
	}
	body := bytes.Repeat([]byte(`{"id":"x","line":"hello"}`+"\n"), 1000)
	packed := CodecZstd.encode(nil, body)
	if len(packed) >= len(body)/10 {
		t.Fatalf("zstd packed %d bytes to %d", len(body), len(packed))
	}
	d, _ := zstd.NewReader(nil)
	if got, err := d.DecodeAll(packed, nil); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("round trip: %v", err)
	}
	packed = CodecS2.encode(nil, body)
	if got, err := s2.Decode(nil, packed); err != nil || !bytes.Equal(got, body) || len(packed) >= len(body)/5 {
		t.Fatalf("s2 round trip: %v, %d bytes to %d", err, len(body), len(packed))
	}
	// Reused storage (what the payload pool hands out): stale bytes in
	// it, large enough or not, change nothing.
	for _, c := range []Codec{CodecS2, CodecZstd} {
		for _, room := range []int{0, 64, len(body), 2 * len(body)} {
			stale := bytes.Repeat([]byte{0xee}, room)
			packed := c.encode(stale, body)
			var got []byte
			var err error
			if c == CodecS2 {
				got, err = s2.Decode(nil, packed)
			} else {
				got, err = d.DecodeAll(packed, nil)
			}
			if err != nil || !bytes.Equal(got, body) {
				t.Fatalf("%s into %d reused bytes: %v", c, room, err)
			}
		}
	}
}
