package collector

import (
	"bytes"
	"testing"

	"github.com/goccy/go-yaml"
	"github.com/klauspost/compress/zstd"
)

func TestCodecConfigAndRoundTrip(t *testing.T) {
	for in, want := range map[string]Codec{"zstd": CodecZstd, "gzip": CodecGzip, "none": CodecNone, "true": CodecGzip, "false": CodecNone} {
		var c Config
		if err := yaml.Unmarshal([]byte("compression: "+in), &c); err != nil || c.Compression != want {
			t.Fatalf("compression: %s → %q, %v; want %q", in, c.Compression, err, want)
		}
	}
	var c Config
	if err := yaml.Unmarshal([]byte("compression: lz4"), &c); err == nil {
		t.Fatal("compression: lz4 accepted")
	}
	if DefaultConfig().Compression != CodecZstd {
		t.Fatal("zstd is not the default")
	}
	body := bytes.Repeat([]byte(`{"id":"x","line":"hello"}`+"\n"), 1000)
	packed := CodecZstd.encode(body)
	if len(packed) >= len(body)/10 {
		t.Fatalf("zstd packed %d bytes to %d", len(body), len(packed))
	}
	d, _ := zstd.NewReader(nil)
	if got, err := d.DecodeAll(packed, nil); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("round trip: %v", err)
	}
}
