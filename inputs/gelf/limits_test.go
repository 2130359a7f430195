package gelf_test

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/logweave/logweave/inputs/gelf"
)

// TCP messages ended by a newline (what many senders do) are each a
// message, also over one long-lived connection.
func TestTCPNewlineFramed(t *testing.T) {
	srv, s := listen(t)
	c, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(c)
	const n = 30100
	for i := 0; i < n; i++ {
		fmt.Fprintf(w, `{"version":"1.1","host":"h","short_message":"m %d"}`+"\n", i)
	}
	w.Flush()
	c.Close()
	got := s.wait(t, n)
	if len(got) != n || !strings.Contains(string(got[n-1]), fmt.Sprintf(`"m %d"`, n-1)) {
		t.Fatalf("%d messages, last %s", len(got), got[len(got)-1])
	}
}

func listenWith(t *testing.T, edit func(*gelf.Config)) (*gelf.Server, *sink) {
	t.Helper()
	cfg := gelf.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	edit(&cfg)
	s := &sink{}
	srv, err := gelf.Listen(cfg, s.handle, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv, s
}

// closedWithin reports whether the server closed c within d.
func closedWithin(c net.Conn, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	_, err := c.Read(make([]byte, 1))
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return false
	}
	return err != nil
}

// A message begun and never ended closes its connection after
// tcp_read_timeout; a connection idle between messages stays open (Docker's
// driver keeps one and would lose a message written into a closed one).
// Connections past tcp_max_connections are closed at once, and unended
// messages of all connections stay within max_pending_bytes.
func TestTCPDeadlinesAndBounds(t *testing.T) {
	srv, s := listenWith(t, func(c *gelf.Config) {
		c.TCPReadTimeout = 300 * time.Millisecond
		c.TCPMaxConnections = 20
		c.MaxMessageBytes = 1 << 20
		c.MaxPendingBytes = 4 << 20
	})
	idle, _ := net.Dial("tcp", srv.Addr())
	defer idle.Close()
	fmt.Fprintf(idle, `{"short_message":"first"}`+"\x00")
	slow, _ := net.Dial("tcp", srv.Addr())
	defer slow.Close()
	fmt.Fprintf(slow, `{"short_message":"never ends`)
	if !closedWithin(slow, 3*time.Second) {
		t.Fatal("a connection with an unended message was not closed after tcp_read_timeout")
	}
	if closedWithin(idle, time.Second) {
		t.Fatal("an idle connection between messages was closed")
	}
	fmt.Fprintf(idle, `{"short_message":"second"}`+"\x00")
	s.wait(t, 2)

	// 19 more (the cap is 20): each starts a 1 MB message and stalls.
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	big := `{"short_message":"` + strings.Repeat("x", 900<<10)
	for i := 0; i < 40; i++ {
		c, err := net.Dial("tcp", srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		c.SetWriteDeadline(time.Now().Add(2 * time.Second))
		c.Write([]byte(big))
	}
	closed := 0
	isClosed := make([]bool, len(conns))
	for deadline := time.Now().Add(10 * time.Second); closed < 40-4 && time.Now().Before(deadline); {
		for i, c := range conns {
			if !isClosed[i] && closedWithin(c, 20*time.Millisecond) {
				isClosed[i] = true
				closed++
			}
		}
	}
	// Beyond the cap closed at once; of the rest, those that would pass 4 MiB.
	if closed < 40-4 {
		t.Fatalf("%d of 40 stalled connections closed, want all but the ~4 MiB the bound allows", closed)
	}
	if closedWithin(idle, 10*time.Millisecond) {
		t.Fatal("the idle connection paid for the others")
	}
}

// Empty chunks cost their bookkeeping, so a flood of them is bounded like
// any other; and incomplete messages expire on time without a new chunk.
func TestChunkFloodBoundedAndExpiredOnTime(t *testing.T) {
	re := gelf.NewReassembler(1<<20, 1<<20, 200*time.Millisecond)
	now := time.Now()
	for i := 0; i < 100000; i++ {
		re.Add(chunk(uint64(i), 0, 128, nil), now)
	}
	n, bytes := re.Pending()
	if bytes == 0 || bytes > 1<<20 || n > (1<<20)/256 {
		t.Fatalf("after 100,000 empty chunks: %d messages, %d bytes pending (bound 1 MiB)", n, bytes)
	}
	re.Expire(now.Add(time.Second))
	if n, bytes := re.Pending(); n != 0 || bytes != 0 {
		t.Fatalf("after expiry: %d messages, %d bytes", n, bytes)
	}

	// The server expires on its own timer.
	srv, _ := listenWith(t, func(c *gelf.Config) { c.ChunkTimeout = 200 * time.Millisecond })
	c, _ := net.Dial("udp", srv.Addr())
	defer c.Close()
	c.Write(chunk(42, 0, 2, []byte(`{"short_message":`)))
	time.Sleep(600 * time.Millisecond)
	if got := metricValue(t, "logweave_gelf_pending_chunk_bytes"); got != 0 {
		t.Fatalf("pending chunk bytes %v after the timeout with no new chunk", got)
	}
}

func metricValue(t *testing.T, name string) float64 {
	t.Helper()
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			if g := m.GetGauge(); g != nil {
				return g.GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}
