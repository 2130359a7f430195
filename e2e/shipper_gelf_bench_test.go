package e2e

import (
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/logweave/logweave/inputs/gelf"
	"github.com/logweave/logweave/shipper"
)

// BenchmarkShipperGELF is the shipper's GELF path at full speed from one
// sender over loopback: receive, map, spool (fsynced), send to a stand-in
// collector that acknowledges at once: the rate sent, the rate delivered
// (the spool drains behind), and what never arrived.
func BenchmarkShipperGELF(b *testing.B) {
	srv, got := countingCollector()
	defer srv.Close()
	sc := shipper.DefaultConfig()
	sc.Collector.URLs = []string{srv.URL}
	sc.State.Path = filepath.Join(b.TempDir(), "state")
	in := shipper.InputConfig{Type: "gelf", GELF: gelf.DefaultConfig(), Spool: shipper.DefaultSpoolConfig()}
	in.GELF.Listen = "127.0.0.1:0"
	sc.Inputs = []shipper.InputConfig{in}
	sh := runShipperConfig(b, sc)
	defer sh.stop(b)
	c, err := net.Dial("udp", sh.ListenAddr(0))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	msg := []byte(fmt.Sprintf(`{"version":"1.1","host":"node-1","short_message":"{\"level\":\"info\",\"msg\":\"order placed\",\"request_id\":\"%032d\"}","timestamp":1764151200.123,"level":6,"_container_name":"orders"}`, 7))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.Write(msg)
	}
	sent := b.Elapsed()
	// Wait while messages keep arriving (the spool drains behind).
	for last, idle := got.Load(), 0; got.Load() < int64(b.N) && idle < 300; idle++ {
		time.Sleep(10 * time.Millisecond)
		if n := got.Load(); n != last {
			last, idle = n, 0
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/sent.Seconds(), "sent/s")
	b.ReportMetric(float64(got.Load())/b.Elapsed().Seconds(), "delivered/s")
	b.ReportMetric(float64(int64(b.N)-got.Load()), "lost")
}
