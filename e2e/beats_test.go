package e2e

import (
	"fmt"
	"testing"
	"time"

	lumber "github.com/elastic/go-lumber/client/v2"
	"github.com/tidwall/gjson"

	"github.com/logweave/logweave/collector"
	"github.com/logweave/logweave/internal/estest"
)

// A Beat (Elastic's Lumberjack v2 client, which libbeat's Logstash output
// is built on) pointed at the collector's beats input: Filebeat-shaped
// events, their JSON messages parsed, @metadata dropped, the file fields
// kept, requests correlated into traces; a window sent again (as a Beat
// does when its ack was lost) overwrites itself.
func TestBeatsToCollector(t *testing.T) {
	dir := t.TempDir()
	es := estest.New()
	defer es.Close()
	col := startCollector(t, dir, es.URL, func(c *collector.Config) {
		c.Beats.Listen = "127.0.0.1:0"
		c.Correlation.Window = 200 * time.Millisecond
	})
	defer stopCollector(t, col)

	c, err := lumber.SyncDial(col.BeatsAddr(), lumber.CompressionLevel(3), lumber.Timeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n = 300
	batch := make([]any, n)
	for i := range batch {
		batch[i] = map[string]any{"@timestamp": time.Now().UTC().Format(time.RFC3339Nano), "@metadata": map[string]any{"beat": "filebeat", "version": "8.17.0"},
			"message": fmt.Sprintf(`{"level":"info","service":"orders","msg":"step %d","request_id":"req-%d"}`, i, i/3),
			"log":     map[string]any{"offset": i * 120, "file": map[string]any{"path": "/var/log/orders.log"}}, "host": map[string]any{"name": "node-1"},
			"agent": map[string]any{"type": "filebeat"}}
	}
	for range 2 { // the second time: a window resent
		if acked, err := c.Send(batch); err != nil || acked != n {
			t.Fatalf("acked %d of %d: %v", acked, n, err)
		}
	}
	eventually(t, 20*time.Second, "events indexed", func() bool { return es.Count("logs-*") >= n })
	eventually(t, 20*time.Second, "traces written", func() bool { return es.Count("traces-*") >= n/3 })
	time.Sleep(time.Second)
	if got := es.Count("logs-*"); got != n {
		t.Fatalf("%d documents, want %d (a resent window must overwrite itself)", got, n)
	}
	for _, idx := range es.IndicesMatching("logs-*") {
		for _, d := range es.Docs(idx) {
			if gjson.GetBytes(d, "@metadata").Exists() || gjson.GetBytes(d, "service.name").String() != "orders" ||
				gjson.GetBytes(d, "log.file.path").String() != "/var/log/orders.log" || gjson.GetBytes(d, "host.name").String() != "node-1" ||
				!gjson.GetBytes(d, "trace.id").Exists() {
				t.Fatalf("event not mapped: %s", d)
			}
		}
	}
	for _, idx := range es.IndicesMatching("traces-*") {
		for _, d := range es.Docs(idx) {
			if gjson.GetBytes(d, "event_count").Int() != 3 {
				t.Fatalf("trace: %s", d)
			}
		}
	}
}
