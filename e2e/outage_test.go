package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/logweave/logweave/collector"
	"github.com/logweave/logweave/internal/estest"
	"github.com/logweave/logweave/shipper"
)

// The collector is down for 30 s while an application keeps writing: the
// shipper holds its checkpoints, retries, and delivers everything once the
// collector is back — nothing lost, nothing doubled.
func TestCollectorDown30SecondsLosesNothing(t *testing.T) {
	dir := t.TempDir()
	es := estest.New()
	defer es.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	newCollector := func() *collector.Collector {
		cfg := collector.DefaultConfig()
		cfg.HTTP.Listen = addr
		cfg.Buffer.Path = filepath.Join(dir, "buffer")
		cfg.Elasticsearch.URLs = []string{es.URL}
		c, err := collector.New(cfg, quiet)
		if err != nil {
			t.Fatal(err)
		}
		c.Start()
		return c
	}
	col := newCollector()

	sc := shipper.DefaultConfig()
	sc.Collector.URLs = []string{"http://" + addr}
	sc.Collector.Linger = 20 * time.Millisecond
	sc.Collector.RetryMax = 2 * time.Second
	sc.State.Path = filepath.Join(dir, "state")
	in := shipper.InputConfig{Type: "file", Config: defaultTail()}
	in.Paths = []string{filepath.Join(dir, "logs", "*.log")}
	in.ScanInterval, in.PollInterval = 50*time.Millisecond, 20*time.Millisecond
	sc.Inputs = []shipper.InputConfig{in}
	os.MkdirAll(filepath.Join(dir, "logs"), 0o755)
	sh := runShipperConfig(t, sc)
	defer sh.stop(t)

	const total = 4000 // 100 lines/s over 40 s
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		f, err := os.Create(filepath.Join(dir, "logs", "app.log"))
		if err != nil {
			t.Error(err)
			return
		}
		defer f.Close()
		for i := 0; i < total; i++ {
			fmt.Fprintf(f, `{"level":"info","msg":"tick","seq":%d}`+"\n", i)
			time.Sleep(10 * time.Millisecond)
		}
	}()
	time.Sleep(5 * time.Second)
	stopCollector(t, col)
	downAt := es.Count("logs-*")
	time.Sleep(30 * time.Second)
	if sh.Acked() > int64(downAt)+1000 { // at most what was in flight when it went down
		t.Fatalf("shipper acknowledged %d lines with the collector down (had %d)", sh.Acked(), downAt)
	}
	col = newCollector()
	defer stopCollector(t, col)
	wg.Wait()
	eventually(t, 60*time.Second, "every line delivered after the outage", func() bool { return es.Count("logs-*") >= total })
	time.Sleep(300 * time.Millisecond)
	if n := es.Count("logs-*"); n != total {
		t.Fatalf("%d documents, want %d", n, total)
	}
	t.Logf("%d indexed before the outage, all %d after", downAt, total)
}
