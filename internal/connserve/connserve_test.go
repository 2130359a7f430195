package connserve

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// Idle connections between messages do not hold Close up, a message begun
// must arrive within the timeout, and past max a connection is refused.
func TestIdleConnectionsCloseTimeoutsAndLimit(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var rejected, lines, timeouts atomic.Int64
	s := New(ln, 3, func() { rejected.Add(1) }, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	s.Serve(func(c net.Conn) {
		tr := &TimeoutReader{Conn: c, Timeout: 200 * time.Millisecond, Server: s}
		br := bufio.NewReader(tr)
		for {
			tr.Begun = false
			if _, err := br.Peek(1); err != nil {
				return
			}
			tr.Begun = true
			if _, err := br.ReadString('\n'); err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					timeouts.Add(1)
				}
				return
			}
			lines.Add(1)
		}
	})
	idle := make([]net.Conn, 2)
	for i := range idle {
		idle[i], _ = net.Dial("tcp", s.Addr().String())
		defer idle[i].Close()
	}
	idle[0].Write([]byte("one line\n"))
	slow, _ := net.Dial("tcp", s.Addr().String())
	defer slow.Close()
	slow.Write([]byte("begun but never ended"))
	time.Sleep(500 * time.Millisecond) // past the timeout: slow is closed
	if timeouts.Load() != 1 {
		t.Fatalf("%d timeouts, want 1", timeouts.Load())
	}
	extra := make([]net.Conn, 2) // 2 idle held: one more fits, the next is refused
	for i := range extra {
		extra[i], _ = net.Dial("tcp", s.Addr().String())
		defer extra[i].Close()
	}
	for deadline := time.Now().Add(2 * time.Second); rejected.Load() != 1 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if rejected.Load() != 1 {
		t.Fatalf("%d rejected, want 1", rejected.Load())
	}
	start := time.Now()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second || lines.Load() != 1 {
		t.Fatalf("Close took %v with idle connections; %d lines", d, lines.Load())
	}
}
