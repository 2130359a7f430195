package shipper_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidwall/gjson"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/logweave/logweave/inputs/forward"
	"github.com/logweave/logweave/inputs/syslog"
	"github.com/logweave/logweave/internal/estest"
	"github.com/logweave/logweave/outputs/collector"
	"github.com/logweave/logweave/pipeline"
	"github.com/logweave/logweave/shipper"
)

// switchCollector stands in for a collector that can be down (503) or up
// (it keeps every line it gets).
type switchCollector struct {
	*httptest.Server
	up    atomic.Bool
	mu    sync.Mutex
	lines []string
}

func newSwitchCollector(t *testing.T) *switchCollector {
	c := &switchCollector{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !c.up.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		envs, err := estest.ReadEnvelopes(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		for _, e := range envs {
			c.lines = append(c.lines, string(e.Line))
		}
		c.mu.Unlock()
		io.WriteString(w, `{"accepted":1}`)
	}))
	t.Cleanup(c.Close)
	return c
}

func (c *switchCollector) got() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.lines...)
}

// listening is a running shipper with one listening input.
type listening struct {
	*shipper.Shipper
	cancel context.CancelFunc
	done   chan error
}

func startListening(t *testing.T, state, url string, in shipper.InputConfig) *listening {
	t.Helper()
	cfg := shipper.DefaultConfig()
	cfg.Collector.URLs = []string{url}
	cfg.Collector.Compression = collector.CodecNone
	cfg.Collector.Linger = 10 * time.Millisecond
	cfg.State.Path = state
	cfg.Inputs = []shipper.InputConfig{in}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	s, err := shipper.New(cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &listening{Shipper: s, cancel: cancel, done: make(chan error, 1)}
	go func() { l.done <- s.Run(ctx) }()
	waitFor(t, "running", func() bool { ok, why := s.Ready(); return ok || why != "not running" })
	return l
}

func (l *listening) stop(t *testing.T) {
	t.Helper()
	l.cancel()
	select {
	case err := <-l.done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("shipper did not stop")
	}
}

func forwardInput(spool int64) shipper.InputConfig {
	in := shipper.InputConfig{Type: "forward", Forward: forward.DefaultConfig(), Spool: shipper.DefaultSpoolConfig()}
	in.Forward.Listen = "127.0.0.1:0"
	if spool > 0 {
		in.Spool.MaxBytes = pipeline.ByteSize(spool)
	}
	return in
}

// sendChunk sends one Forward-mode message of n records (seq from first)
// asking for an acknowledgement; it returns the chunk id.
func sendChunk(t *testing.T, c net.Conn, tag string, first, n int, pad string) string {
	t.Helper()
	chunk := fmt.Sprintf("chunk-%d", first)
	entries := make([]any, n)
	for i := range entries {
		entries[i] = []any{time.Now().Unix(), map[string]any{"log": fmt.Sprintf(`{"msg":"hello","seq":%d,"pad":%q}`, first+i, pad), "source": "stdout"}}
	}
	b, err := msgpack.Marshal([]any{tag, entries, map[string]any{"chunk": chunk, "size": n}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	return chunk
}

// readAck reads the acknowledgement of chunk, or fails with what came
// instead; a timeout returns false.
func readAck(t *testing.T, r *bufio.Reader, c net.Conn, chunk string, within time.Duration) bool {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(within))
	var ack map[string]string
	if err := msgpack.NewDecoder(r).Decode(&ack); err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			return false
		}
		t.Fatalf("reading the ack of %s: %v", chunk, err)
	}
	if ack["ack"] != chunk {
		t.Fatalf("ack %v, want %s", ack, chunk)
	}
	return true
}

func seqs(t *testing.T, lines []string, want int) {
	t.Helper()
	seen := map[int64]int{}
	for _, l := range lines {
		if gjson.Get(l, "fluent.tag").String() != "app" || gjson.Get(l, "stream").String() != "stdout" || gjson.Get(l, "msg").String() != "hello" {
			t.Fatalf("record not mapped: %.300s", l)
		}
		seen[gjson.Get(l, "seq").Int()]++
	}
	for i := range want {
		if seen[int64(i)] != 1 {
			t.Fatalf("seq %d delivered %d times (%d lines)", i, seen[int64(i)], len(lines))
		}
	}
	if len(lines) != want {
		t.Fatalf("%d lines, want %d", len(lines), want)
	}
}

// A Forward chunk is acknowledged once it is in the spool, while no
// collector answers; the spool outlives the shipper, and the next one
// delivers every record once.
func TestForwardAcknowledgedOnceSpooledAndDeliveredAfterRestart(t *testing.T) {
	col := newSwitchCollector(t)
	state := filepath.Join(t.TempDir(), "state")
	sh := startListening(t, state, col.URL, forwardInput(0))
	c, err := net.Dial("tcp", sh.ListenAddr(0))
	if err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	for i := range 3 {
		chunk := sendChunk(t, c, "app", i*100, 100, "")
		if !readAck(t, r, c, chunk, 5*time.Second) {
			t.Fatalf("no ack for %s while the collector is down", chunk)
		}
	}
	c.Close()
	sh.stop(t)
	if n := len(col.got()); n != 0 {
		t.Fatalf("%d lines delivered to a collector that was down", n)
	}

	col.up.Store(true)
	sh = startListening(t, state, col.URL, forwardInput(0))
	defer sh.stop(t)
	waitFor(t, "the spooled records delivered", func() bool { return len(col.got()) >= 300 })
	time.Sleep(100 * time.Millisecond)
	seqs(t, col.got(), 300)
}

// While the spool is full (the collector down), a chunk is not
// acknowledged, so the sender holds it; /readyz says why. Once the
// collector is back the spool drains, the chunk is acknowledged, and every
// record arrives once.
func TestForwardAckWithheldWhileSpoolFull(t *testing.T) {
	col := newSwitchCollector(t)
	sh := startListening(t, filepath.Join(t.TempDir(), "state"), col.URL, forwardInput(1<<20))
	defer sh.stop(t)
	c, err := net.Dial("tcp", sh.ListenAddr(0))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	pad := strings.Repeat("p", 900)
	sent := 0
	for {
		chunk := sendChunk(t, c, "app", sent, 100, pad)
		sent += 100
		if !readAck(t, r, c, chunk, 2*time.Second) {
			ok, why := sh.Ready()
			if ok || !strings.Contains(why, "forward spool") {
				t.Fatalf("no ack, yet ready=%v %q", ok, why)
			}
			col.up.Store(true)
			if !readAck(t, r, c, chunk, 20*time.Second) {
				t.Fatal("no ack once the collector was back")
			}
			break
		}
		if sent > 2000 {
			t.Fatal("a 1 MiB spool took 2,000 records of 1 KB with no collector")
		}
	}
	waitFor(t, "every record delivered", func() bool { return len(col.got()) >= sent })
	waitFor(t, "ready again", func() bool { ok, _ := sh.Ready(); return ok })
	time.Sleep(100 * time.Millisecond)
	seqs(t, col.got(), sent)
}

// Syslog received while no collector answers is spooled; what was received
// before the shipper stopped is delivered by the next one, mapped.
func TestSyslogSpooledThroughRestart(t *testing.T) {
	col := newSwitchCollector(t)
	state := filepath.Join(t.TempDir(), "state")
	in := shipper.InputConfig{Type: "syslog", Syslog: syslog.DefaultConfig(), Spool: shipper.DefaultSpoolConfig()}
	in.Syslog.Listen = "127.0.0.1:0"
	sh := startListening(t, state, col.URL, in)
	c, err := net.Dial("tcp", sh.ListenAddr(0))
	if err != nil {
		t.Fatal(err)
	}
	const n = 500
	for i := range n {
		fmt.Fprintf(c, "<134>1 2026-12-06T10:00:00.000Z web-1 orders 42 - - {\"msg\":\"hello\",\"seq\":%d}\n", i)
	}
	c.Close()
	time.Sleep(200 * time.Millisecond) // in the receiver's hands; stopping spools what it holds
	sh.stop(t)
	if len(col.got()) != 0 {
		t.Fatal("delivered to a collector that was down")
	}
	col.up.Store(true)
	sh = startListening(t, state, col.URL, in)
	defer sh.stop(t)
	waitFor(t, "the spooled messages delivered", func() bool { return len(col.got()) >= n })
	time.Sleep(100 * time.Millisecond)
	lines := col.got()
	if len(lines) != n {
		t.Fatalf("%d lines, want %d", len(lines), n)
	}
	seen := map[int64]bool{}
	for _, l := range lines {
		if gjson.Get(l, "log.syslog.appname").String() != "orders" || gjson.Get(l, "host.name").String() != "web-1" || gjson.Get(l, "msg").String() != "hello" {
			t.Fatalf("message not mapped: %.300s", l)
		}
		seen[gjson.Get(l, "seq").Int()] = true
	}
	if len(seen) != n {
		t.Fatalf("%d distinct messages, want %d", len(seen), n)
	}
}
