package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"

	"github.com/logweave/logweave/inputs/tail"
	"github.com/logweave/logweave/pipeline"
)

// BenchmarkTailToBatch is the shipper's path from a file to encoded batch
// bodies: tail (read, split lines), envelope (deterministic id, binary
// framing), 1000-line batches; "s2", "gzip" and "zstd" also compress each
// batch as the sender does (s2, gzip BestSpeed, zstd SpeedFastest). One op
// is one line.
func BenchmarkTailToBatch(b *testing.B) {
	for _, codec := range []string{"none", "s2", "gzip", "zstd"} {
		b.Run(codec, func(b *testing.B) {
			dir := b.TempDir()
			p := filepath.Join(dir, "app.log")
			var sb strings.Builder
			for i := 0; i < b.N; i++ {
				fmt.Fprintf(&sb, `{"time":"2026-11-26T10:15:00.123Z","level":"INFO","service":"payment","msg":"charged card %d","request_id":"req-%d","amount":42.5}`+"\n", i, i/5)
			}
			os.WriteFile(p, []byte(sb.String()), 0o644)
			cfg := tail.DefaultConfig()
			cfg.Paths = []string{p}
			lines := make(chan tail.Line, 4096)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			b.SetBytes(int64(sb.Len() / b.N))
			b.ResetTimer()
			go tail.New(cfg, nil, quiet).Run(ctx, lines)
			var body, out []byte
			var zb bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&zb, gzip.BestSpeed)
			zs, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(1<<20))
			var frames pipeline.FrameWriter
			n := 0
			var raw, packed int
			flush := func() {
				raw += len(body)
				switch codec {
				case "gzip":
					zb.Reset()
					zw.Reset(&zb)
					zw.Write(body)
					zw.Close()
					packed += zb.Len()
				case "zstd":
					out = zs.EncodeAll(body, out[:0])
					packed += len(out)
				case "s2":
					out = s2.Encode(out[:cap(out)], body)
					packed += len(out)
				}
				body, n = body[:0], 0
				frames.Reset()
			}
			now := time.Now()
			for i := 0; i < b.N; i++ {
				l := <-lines
				e := pipeline.Envelope{ID: pipeline.EventID("node-1", l.FileID, l.Offset, 0, l.Data), ReadAt: now, Host: "node-1", Path: l.Path, Offset: l.Offset, Line: l.Data}
				body = frames.Append(body, &e)
				if n++; n >= 1000 || len(body) >= 1<<20 {
					flush()
				}
			}
			flush()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
			if packed > 0 {
				b.ReportMetric(float64(raw)/float64(packed), "ratio")
			}
		})
	}
}
