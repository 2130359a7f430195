package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/logweave/logweave/internal/estest"
)

// BenchmarkEndToEnd measures the whole path in one process: a file is
// tailed by the shipper, batches go gzip over HTTP to the collector, which
// parses, normalises, fsyncs into its disk buffer, and the indexer delivers
// to the output. One op is one log line. "file" uses the real file output;
// "estest" bulk-indexes into the in-process Elasticsearch stand-in (whose
// own bookkeeping is part of the cost).
func BenchmarkEndToEnd(b *testing.B) {
	for _, out := range []string{"file", "estest"} {
		b.Run(out, func(b *testing.B) {
			dir := b.TempDir()
			var srv *estest.Server
			url := ""
			if out == "estest" {
				srv = estest.New()
				defer srv.Close()
				url = srv.URL
			}
			col := startCollector(b, dir, url)
			defer stopCollector(b, col)
			logs := filepath.Join(dir, "logs")
			os.MkdirAll(logs, 0o755)
			f, err := os.Create(filepath.Join(logs, "bench.log"))
			if err != nil {
				b.Fatal(err)
			}
			var sb strings.Builder
			for i := 0; i < b.N; i++ {
				fmt.Fprintf(&sb, `{"time":"2026-11-26T10:15:00.123Z","level":"INFO","service":"payment","msg":"charged card %d","request_id":"req-%d","amount":42.5}`+"\n", i, i/5)
			}
			f.WriteString(sb.String())
			f.Close()
			b.SetBytes(int64(sb.Len() / max(b.N, 1)))
			b.ResetTimer()
			sh := startShipper(b, dir, col.Addr(), filepath.Join(logs, "*.log"))
			deadline := time.Now().Add(5 * time.Minute)
			for col.Indexed() < int64(b.N) {
				if time.Now().After(deadline) {
					b.Fatalf("indexed %d of %d", col.Indexed(), b.N)
				}
				time.Sleep(time.Millisecond)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			sh.stop(b)
		})
	}
}
