package e2e

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	gogelf "github.com/Graylog2/go-gelf/gelf"
	"github.com/tidwall/gjson"

	"github.com/logweave/logweave/collector"
	"github.com/logweave/logweave/internal/estest"
)

func startGELFCollector(t testing.TB, esURL string) *collector.Collector {
	t.Helper()
	cfg := collector.DefaultConfig()
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.GELF.Listen = "127.0.0.1:0"
	cfg.Buffer.Path = filepath.Join(t.TempDir(), "buffer")
	cfg.Elasticsearch.URLs = []string{esURL}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	c, err := collector.New(cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	c.Start()
	t.Cleanup(func() { stopCollector(t, c) })
	return c
}

// GELF as Docker's gelf driver sends it (JSON application lines in
// short_message, container extras), through the collector into
// Elasticsearch with ECS fields and the request id as trace.id.
func TestGELFIntoElasticsearch(t *testing.T) {
	es := estest.New()
	defer es.Close()
	c := startGELFCollector(t, es.URL)
	w, err := gogelf.NewUDPWriter(c.GELFAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	const n = 200
	for i := 0; i < n; i++ {
		short := fmt.Sprintf(`{"level":"info","msg":"order %d placed","request_id":"req-%d","ts":%d}`, i, i/4, time.Date(2026, 11, 26, 10, 0, 0, i*1e6, time.UTC).UnixMilli())
		if i%10 == 9 {
			short = fmt.Sprintf("plain stderr line %d", i)
		}
		err := w.WriteMessage(&gogelf.Message{Version: "1.1", Host: "node-3", Short: short, TimeUnix: 1764151200.25, Level: 6,
			Extra: map[string]any{"_container_id": "abc123", "_container_name": "orders", "_image_name": "shop/orders:2", "_tag": "orders"}})
		if err != nil {
			t.Fatal(err)
		}
		if i%50 == 49 {
			time.Sleep(5 * time.Millisecond) // UDP: do not outrun the socket buffer
		}
	}
	eventually(t, 20*time.Second, "GELF messages indexed", func() bool { return es.Count("logs-*") >= n })
	docs := 0
	for _, idx := range es.IndicesMatching("logs-*,logweave-deadletter-*") {
		for _, d := range es.Docs(idx) {
			docs++
			if gjson.GetBytes(d, "container.name").String() != "orders" || gjson.GetBytes(d, "host.name").String() != "node-3" {
				t.Fatalf("container/host fields missing: %s", d)
			}
			msg := gjson.GetBytes(d, "message").String()
			if gjson.GetBytes(d, "http.request.id").Exists() {
				if gjson.GetBytes(d, "log.level").String() != "info" || gjson.GetBytes(d, "trace.id").String() == "" || idx != "logs-2026.11.26" {
					t.Fatalf("JSON line not parsed like a log line (%s): %s", idx, d)
				}
			} else if gjson.GetBytes(d, "log.level").String() != "info" || len(msg) == 0 {
				t.Fatalf("plain line: %s", d)
			}
		}
	}
	if docs != n {
		t.Fatalf("%d documents, want %d", docs, n)
	}
}
