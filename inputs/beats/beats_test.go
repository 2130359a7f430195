package beats

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	lumber "github.com/elastic/go-lumber/client/v2"
	"github.com/tidwall/gjson"
)

type got struct {
	mu      sync.Mutex
	windows [][]string
}

func (g *got) all() [][]string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([][]string(nil), g.windows...)
}

func serve(t *testing.T, cfg Config, h Handler) *Server {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	s, err := Listen(cfg, h, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func collect(t *testing.T, cfg Config) (*Server, *got) {
	g := &got{}
	s := serve(t, cfg, func(_ context.Context, events [][]byte) error {
		w := make([]string, len(events))
		for i, e := range events {
			w[i] = string(e)
		}
		g.mu.Lock()
		g.windows = append(g.windows, w)
		g.mu.Unlock()
		return nil
	})
	return s, g
}

func filebeatEvent(i int) map[string]any {
	return map[string]any{"@timestamp": "2026-12-06T10:00:00.000Z", "@metadata": map[string]any{"beat": "filebeat", "type": "_doc", "version": "8.17.0"},
		"message": fmt.Sprintf(`{"level":"info","msg":"step %d","request_id":"r-%d"}`, i, i/3), "log": map[string]any{"offset": i * 100, "file": map[string]any{"path": "/var/log/app.log"}},
		"host": map[string]any{"name": "node-1"}, "agent": map[string]any{"type": "filebeat", "version": "8.17.0"}, "ecs": map[string]any{"version": "8.0.0"}}
}

// Elastic's own Lumberjack v2 client (what libbeat's Logstash output is
// built on), compressed and not, windows of several sizes: every event
// arrives once, in order, and each window is acknowledged.
func TestGoLumberClient(t *testing.T) {
	s, g := collect(t, DefaultConfig())
	for _, level := range []int{0, 3} {
		c, err := lumber.SyncDial(s.Addr(), lumber.CompressionLevel(level), lumber.Timeout(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{1, 7, 500} {
			batch := make([]any, n)
			for i := range batch {
				batch[i] = filebeatEvent(i)
			}
			acked, err := c.Send(batch)
			if err != nil || acked != n {
				t.Fatalf("compression %d, window %d: acked %d, %v", level, n, acked, err)
			}
		}
		c.Close()
	}
	w := g.all()
	if len(w) != 6 || len(w[5]) != 500 {
		t.Fatalf("%d windows", len(w))
	}
	if gjson.Get(w[5][499], "log.offset").Int() != 49900 || gjson.Get(w[5][499], "@metadata.beat").String() != "filebeat" {
		t.Fatalf("last event: %s", w[5][499])
	}
}

// The ack waits for the handler; a window the handler refused is not
// acknowledged and its connection is closed (the Beat sends it again).
func TestAckOnlyOnceDurable(t *testing.T) {
	release := make(chan error)
	s := serve(t, DefaultConfig(), func(context.Context, [][]byte) error { return <-release })
	c, err := lumber.Dial(s.Addr(), lumber.Timeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Send([]any{filebeatEvent(1), filebeatEvent(2)}); err != nil {
		t.Fatal(err)
	}
	acked := make(chan uint32, 1)
	go func() { n, _ := c.AwaitACK(2); acked <- n }()
	select {
	case n := <-acked:
		t.Fatalf("acknowledged (%d) before the handler returned", n)
	case <-time.After(300 * time.Millisecond):
	}
	release <- nil
	if n := <-acked; n != 2 {
		t.Fatalf("ack %d, want 2", n)
	}
	c.Send([]any{filebeatEvent(3)})
	release <- errors.New("buffer full")
	if n, err := c.AwaitACK(1); err == nil {
		t.Fatalf("a refused window was acknowledged (%d)", n)
	}
}

func frame(typ byte, fields ...any) []byte {
	b := []byte{'2', typ}
	for _, f := range fields {
		switch v := f.(type) {
		case uint32:
			b = binary.BigEndian.AppendUint32(b, v)
		case []byte:
			b = append(b, v...)
		case string:
			b = append(b, v...)
		}
	}
	return b
}

func compressed(inner []byte) []byte {
	var z bytes.Buffer
	w := zlib.NewWriter(&z)
	w.Write(inner)
	w.Close()
	return frame('C', uint32(z.Len()), z.Bytes())
}

// v1 key/value data frames, and input that breaks the framing: the
// connection closes quickly, nothing is allocated for what is declared,
// nothing is handled, and the server serves on.
func TestV1FramesAndMalformedInput(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxFrameBytes = 64 << 10
	cfg.MaxDecompressedBytes = 64 << 10
	cfg.MaxWindow = 100
	cfg.ReadTimeout = 300 * time.Millisecond
	s, g := collect(t, cfg)

	c, _ := net.Dial("tcp", s.Addr())
	c.Write(cat(frame('W', uint32(1)), frame('D', uint32(1), uint32(2), uint32(4), "line", uint32(5), "hello", uint32(4), "host", uint32(2), "n1")))
	var ack [6]byte
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, ack[:]); err != nil || string(ack[:2]) != "2A" || binary.BigEndian.Uint32(ack[2:]) != 1 {
		t.Fatalf("v1 frame: ack %q, %v", ack, err)
	}
	c.Close()
	if w := g.all(); len(w) != 1 || w[0][0] != `{"line":"hello","host":"n1"}` {
		t.Fatalf("v1 frame: %q", w)
	}

	bomb := func() []byte {
		var z bytes.Buffer
		w, _ := zlib.NewWriterLevel(&z, zlib.BestCompression)
		w.Write(frame('J', uint32(1), uint32(1<<20), strings.Repeat(" ", 1<<20)))
		w.Close()
		return frame('C', uint32(z.Len()), z.Bytes())
	}()
	for name, in := range map[string][]byte{
		"HTTP":                     []byte("GET / HTTP/1.1\r\n\r\n"),
		"version 1":                []byte("1W\x00\x00\x00\x01"),
		"declared 4 GiB frame":     frame('J', uint32(1), uint32(0xffffffff)),
		"declared 4G pairs":        frame('D', uint32(1), uint32(0xffffffff)),
		"window past max":          frame('W', uint32(1_000_000)),
		"more events than window":  cat(frame('W', uint32(1)), compressed(cat(frame('J', uint32(1), uint32(2), "{}"), frame('J', uint32(2), uint32(2), "{}")))),
		"zlib bomb":                bomb,
		"compressed in compressed": compressed(compressed(frame('W', uint32(1)))),
		"not zlib":                 frame('C', uint32(4), "abcd"),
		"cut off":                  cat(frame('W', uint32(1)), []byte("2J\x00\x00")),
	} {
		c, _ := net.Dial("tcp", s.Addr())
		c.Write(in)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		start := time.Now()
		if _, err := c.Read(make([]byte, 1)); err == nil || func() bool { ne, ok := err.(net.Error); return ok && ne.Timeout() }() {
			t.Fatalf("%s: connection not closed (%v)", name, err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("%s: closed after %v", name, d)
		}
		c.Close()
	}
	if w := g.all(); len(w) != 1 {
		t.Fatalf("%d windows handled, want only the v1 one", len(w))
	}

	// An event that is not JSON, in a frame whose end is known: kept as
	// its text with a failure tag, and acknowledged.
	c, _ = net.Dial("tcp", s.Addr())
	defer c.Close()
	c.Write(cat(frame('W', uint32(1)), frame('J', uint32(1), uint32(5), "hello")))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, ack[:]); err != nil || string(ack[:2]) != "2A" {
		t.Fatalf("not-JSON event: ack %q, %v", ack, err)
	}
	if w := g.all(); len(w) != 2 || w[1][0] != `{"message":"hello","tags":["_beatsparsefailure"]}` {
		t.Fatalf("not-JSON event: %q", w)
	}
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestMap(t *testing.T) {
	ev := `{"@timestamp":"2026-12-06T10:00:01.000Z","@metadata":{"beat":"filebeat"},"message":"{\"level\":\"warn\",\"msg\":\"slow\",\"time\":\"2026-12-06T09:59:59Z\"}","log":{"offset":42,"file":{"path":"/var/log/app.log"}},"host":{"name":"node-1"}}`
	want := `{"level":"warn","msg":"slow","time":"2026-12-06T09:59:59Z","log":{"offset":42,"file":{"path":"/var/log/app.log"}},"host":{"name":"node-1"}}`
	if got := string(Map([]byte(ev))); got != want {
		t.Fatalf("JSON message:\n got %s\nwant %s", got, want)
	}
	ev = `{"@timestamp":"2026-12-06T10:00:01.000Z","@metadata":{"beat":"filebeat"},"message":"plain text","host":{"name":"node-1"}}`
	want = `{"@timestamp":"2026-12-06T10:00:01.000Z","message":"plain text","host":{"name":"node-1"}}`
	if got := string(Map([]byte(ev))); got != want {
		t.Fatalf("text message:\n got %s\nwant %s", got, want)
	}
}

// FuzzFrames: whatever arrives, reading frames ends in events or an error,
// never a panic, and every event is a JSON object.
func FuzzFrames(f *testing.F) {
	f.Add(cat(frame('W', uint32(2)), compressed(cat(frame('J', uint32(1), uint32(2), "{}"), frame('J', uint32(2), uint32(9), `{"a":[1]}`)))))
	f.Add(cat(frame('W', uint32(1)), frame('D', uint32(1), uint32(1), uint32(1), "k", uint32(1), "v")))
	s := &Server{cfg: DefaultConfig()}
	s.cfg.MaxFrameBytes, s.cfg.MaxDecompressedBytes, s.cfg.MaxWindow = 1<<16, 1<<16, 100
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bufio.NewReader(bytes.NewReader(in))
		w := &window{}
		for {
			if _, err := r.Peek(1); err != nil {
				break
			}
			if err := s.frame(r, w, false); err != nil {
				break
			}
		}
		for _, e := range w.events {
			if !gjson.ValidBytes(e) || !gjson.ParseBytes(e).IsObject() {
				t.Fatalf("event %q", e)
			}
			Map(e)
		}
	})
}
