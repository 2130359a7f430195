package gelf_test

import (
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/logweave/logweave/inputs/gelf"
)

// BenchmarkUDP sends uncompressed GELF datagrams as fast as one sender can
// over loopback and counts what the listener decoded; "lost" is what the
// kernel dropped (a full receive buffer) or the listener missed.
func BenchmarkUDP(b *testing.B) {
	var got atomic.Int64
	cfg := gelf.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	srv, err := gelf.Listen(cfg, func([]byte, string) { got.Add(1) }, quiet)
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	c, err := net.Dial("udp", srv.Addr())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	msg := []byte(fmt.Sprintf(`{"version":"1.1","host":"node-1","short_message":"{\"level\":\"info\",\"msg\":\"order placed\",\"request_id\":\"%032d\"}","timestamp":1764151200.123,"level":6,"_container_name":"orders"}`, 7))
	b.SetBytes(int64(len(msg)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.Write(msg)
	}
	deadline := time.Now().Add(2 * time.Second)
	for got.Load() < int64(b.N) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(got.Load())/b.Elapsed().Seconds(), "datagrams/s")
	b.ReportMetric(float64(int64(b.N)-got.Load()), "lost")
}
