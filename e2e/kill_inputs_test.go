package e2e

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	lumber "github.com/elastic/go-lumber/client/v2"
	"github.com/tidwall/gjson"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/logweave/logweave/internal/estest"
)

// The collector killed (SIGKILL) twice, once with a backlog Elasticsearch
// had not taken, while a Forward sender asking for acknowledgements (as
// Fluent Bit's Require_ack_response) and a Beat send to it. Each sender
// sends a batch again until it is acknowledged, as they do: every event
// is in Elasticsearch once — none acknowledged was lost, none sent again
// was indexed twice.
func TestCollectorKilledUnderForwardAndBeatsSenders(t *testing.T) {
	collectorBin, _ := buildBinaries(t)
	dir := t.TempDir()
	srv := estest.New()
	defer srv.Close()
	addr, fwdAddr, beatsAddr := freeTCPAddr(t), freeTCPAddr(t), freeTCPAddr(t)
	colCfg := filepath.Join(dir, "collector.yaml")
	os.WriteFile(colCfg, []byte(fmt.Sprintf(`
http: {listen: %q}
buffer: {path: %q, segment_bytes: 64KiB, max_bytes: 64MiB}
elasticsearch:
  urls: [%q]
  retry_initial: 10ms
  retry_max: 100ms
  breaker_cooldown: 500ms
indexer: {batch_size: 300}
forward: {listen: %q}
beats: {listen: %q}
`, addr, filepath.Join(dir, "buffer"), srv.URL, fwdAddr, beatsAddr)), 0o644)
	start := func() *process {
		return spawnCollector(t, filepath.Join(dir, "collector.log"), collectorBin, colCfg, addr)
	}

	const batches, per = 100, 50
	var acked [2]atomic.Int64 // events acknowledged: forward, beats
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // Forward, Forward mode, one chunk id per batch
		defer wg.Done()
		var conn net.Conn
		var dec *msgpack.Decoder
		t0 := time.Now().Unix()
		var msg []byte
		var chunk string
		for b := 0; b < batches; {
			if conn == nil {
				c, err := net.DialTimeout("tcp", fwdAddr, time.Second)
				if err != nil {
					time.Sleep(50 * time.Millisecond)
					continue
				}
				conn, dec = c, msgpack.NewDecoder(bufio.NewReader(c))
			}
			if msg == nil { // made once per batch: a sender sends the same bytes again (map keys keep their order)
				entries := make([]any, per)
				for i := range entries {
					entries[i] = []any{t0, map[string]any{"log": fmt.Sprintf(`{"msg":"work","src":"forward","seq":%d}`, b*per+i), "source": "stdout"}}
				}
				chunk = fmt.Sprintf("chunk-%d", b)
				msg, _ = msgpack.Marshal([]any{"app", entries, map[string]any{"chunk": chunk}})
			}
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			var ack map[string]string
			if _, err := conn.Write(msg); err != nil || dec.Decode(&ack) != nil || ack["ack"] != chunk {
				conn.Close()
				conn = nil
				time.Sleep(50 * time.Millisecond)
				continue // the same chunk again
			}
			acked[0].Add(per)
			b++
			msg = nil
			time.Sleep(10 * time.Millisecond)
		}
		if conn != nil {
			conn.Close()
		}
	}()
	go func() { // a Beat: a window, sent again until all of it is acknowledged
		defer wg.Done()
		var c *lumber.SyncClient
		var events []any
		for b := 0; b < batches; {
			if events == nil { // made once per window: a Beat sends the same events again
				events = make([]any, per)
				for i := range events {
					events[i] = map[string]any{"@timestamp": time.Now().UTC().Format(time.RFC3339Nano), "message": fmt.Sprintf(`{"msg":"work","src":"beats","seq":%d}`, b*per+i)}
				}
			}
			if c == nil {
				var err error
				if c, err = lumber.SyncDial(beatsAddr, lumber.Timeout(5*time.Second)); err != nil {
					c = nil
					time.Sleep(50 * time.Millisecond)
					continue
				}
			}
			if n, err := c.Send(events); err != nil || n != per {
				c.Close()
				c = nil
				time.Sleep(50 * time.Millisecond)
				continue
			}
			acked[1].Add(per)
			b++
			events = nil
			time.Sleep(10 * time.Millisecond)
		}
		if c != nil {
			c.Close()
		}
	}()

	col := start()
	eventually(t, 60*time.Second, "some events indexed", func() bool { return srv.Count("logs-*") > 1500 })
	col.kill()
	t.Logf("killed with %d+%d events acknowledged", acked[0].Load(), acked[1].Load())
	col = start()
	eventually(t, 60*time.Second, "more events indexed", func() bool { return srv.Count("logs-*") > 4000 })
	srv.Down.Store(503) // a backlog in the buffer, acknowledged to the senders, then killed
	time.Sleep(500 * time.Millisecond)
	col.kill()
	t.Logf("killed with %d+%d events acknowledged, %d indexed", acked[0].Load(), acked[1].Load(), srv.Count("logs-*"))
	srv.Down.Store(0)
	col = start()
	wg.Wait()
	const total = 2 * batches * per
	eventually(t, 120*time.Second, "every event indexed", func() bool { return srv.Count("logs-*") >= total })
	time.Sleep(500 * time.Millisecond)
	col.term()

	seen := map[string]string{}
	for _, idx := range srv.IndicesMatching("logs-*,logweave-deadletter-*") {
		for id, doc := range srv.Docs(idx) {
			k := gjson.GetBytes(doc, "src").String() + "/" + gjson.GetBytes(doc, "seq").String()
			if prev, dup := seen[k]; dup {
				t.Fatalf("%s indexed twice: %s and %s/%s: %s", k, prev, idx, id, doc)
			}
			seen[k] = idx + "/" + id
		}
	}
	for _, src := range []string{"forward", "beats"} {
		for i := range batches * per {
			if seen[fmt.Sprintf("%s/%d", src, i)] == "" {
				t.Fatalf("%s event %d acknowledged but not indexed", src, i)
			}
		}
	}
	if len(seen) != total {
		t.Fatalf("%d distinct events, want %d", len(seen), total)
	}
}
