package gelf_test

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gogelf "github.com/Graylog2/go-gelf/gelf"
	"github.com/tidwall/gjson"

	"github.com/logweave/logweave/inputs/gelf"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type sink struct {
	mu   sync.Mutex
	msgs [][]byte
}

func (s *sink) handle(p []byte, _ string) {
	s.mu.Lock()
	s.msgs = append(s.msgs, p)
	s.mu.Unlock()
}

func (s *sink) wait(t *testing.T, n int) [][]byte {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.mu.Lock()
		got := len(s.msgs)
		s.mu.Unlock()
		if got >= n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d messages, want %d", got, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.msgs...)
}

func listen(t *testing.T) (*gelf.Server, *sink) {
	t.Helper()
	return listenWith(t, func(c *gelf.Config) { c.MaxMessageBytes = 256 << 10 })
}

// go-gelf's writer, as applications use it: chunked (1420-byte datagrams),
// gzip and zlib, from concurrent senders.
func TestUDPChunkedFromConcurrentSenders(t *testing.T) {
	srv, s := listen(t)
	const senders, per = 4, 25
	var wg sync.WaitGroup
	for w := 0; w < senders; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			gw, err := gogelf.NewUDPWriter(srv.Addr())
			if err != nil {
				t.Error(err)
				return
			}
			defer gw.Close()
			if w%2 == 1 {
				gw.CompressionType = gogelf.CompressZlib
			}
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for i := 0; i < per; i++ {
				big := make([]byte, 5000+r.IntN(20000)) // several chunks
				for j := range big {
					big[j] = byte('a' + r.IntN(26)) // incompressible enough to chunk
				}
				m := &gogelf.Message{Version: "1.1", Host: "h", Short: fmt.Sprintf("w%d-%d %s", w, i, big), TimeUnix: 1764115200.5, Level: 6,
					Extra: map[string]any{"_request_id": fmt.Sprintf("r-%d-%d", w, i)}}
				if err := gw.WriteMessage(m); err != nil {
					t.Error(err)
				}
				time.Sleep(time.Millisecond)
			}
		}(w)
	}
	wg.Wait()
	msgs := s.wait(t, senders*per)
	seen := map[string]bool{}
	for _, m := range msgs {
		short := gjson.GetBytes(m, "short_message").String()
		seen[strings.Fields(short)[0]] = true
		if gjson.GetBytes(m, "_request_id").String() == "" {
			t.Fatalf("extra field lost: %.100s", m)
		}
	}
	if len(seen) != senders*per {
		t.Fatalf("%d distinct messages of %d", len(seen), senders*per)
	}
}

func chunk(id uint64, seq, count int, data []byte) []byte {
	p := []byte{0x1e, 0x0f}
	p = binary.BigEndian.AppendUint64(p, id)
	return append(append(p, byte(seq), byte(count)), data...)
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func TestReassemblerOrderDuplicatesTimeoutAndBounds(t *testing.T) {
	msg := gz([]byte(`{"version":"1.1","host":"h","short_message":"` + strings.Repeat("x", 3000) + `"}`))
	parts := [][]byte{msg[:len(msg)/3], msg[len(msg)/3 : 2*len(msg)/3], msg[2*len(msg)/3:]}
	now := time.Now()
	r := gelf.NewReassembler(1<<20, 1<<20, 5*time.Second)
	// out of order, with a duplicate
	for i, seq := range []int{2, 0, 2, 1} {
		whole, err := r.Add(chunk(7, seq, 3, parts[seq]), now)
		if err != nil {
			t.Fatal(err)
		}
		if (whole != nil) != (i == 3) {
			t.Fatalf("step %d: whole=%v", i, whole != nil)
		}
		if whole != nil && !bytes.Equal(whole, msg) {
			t.Fatal("reassembled bytes differ")
		}
	}
	if n, b := r.Pending(); n != 0 || b != 0 {
		t.Fatalf("pending %d/%d after completion", n, b)
	}
	// an incomplete message expires
	r.Add(chunk(8, 0, 2, parts[0]), now)
	r.Add(chunk(9, 0, 2, parts[0]), now.Add(6*time.Second))
	if n, _ := r.Pending(); n != 1 {
		t.Fatalf("expired message still pending: %d", n)
	}
	// malformed chunks are errors, not panics
	for _, bad := range [][]byte{{0x1e, 0x0f, 1}, chunk(1, 5, 3, nil), chunk(1, 0, 0, nil), chunk(1, 0, 200, nil)} {
		if _, err := r.Add(bad, now); err == nil {
			t.Fatalf("accepted malformed chunk %x", bad)
		}
	}
	// the memory bound evicts the oldest incomplete messages
	small := gelf.NewReassembler(1<<20, 10_000, time.Minute)
	for id := uint64(0); id < 20; id++ {
		small.Add(chunk(id, 0, 2, make([]byte, 1000)), now)
	}
	if _, b := small.Pending(); b > 10_000 {
		t.Fatalf("pending %d bytes over the 10000 bound", b)
	}
	// a chunked message over max_message_bytes is refused
	tiny := gelf.NewReassembler(2000, 1<<20, time.Minute)
	tiny.Add(chunk(3, 0, 3, make([]byte, 1200)), now)
	if _, err := tiny.Add(chunk(3, 1, 3, make([]byte, 1200)), now); err == nil {
		t.Fatal("oversized chunked message accepted")
	}
}

func TestDecompress(t *testing.T) {
	plain := []byte(`{"short_message":"hi"}`)
	var zb bytes.Buffer
	zw := zlib.NewWriter(&zb)
	zw.Write(plain)
	zw.Close()
	for name, in := range map[string][]byte{"plain": plain, "gzip": gz(plain), "zlib": zb.Bytes()} {
		out, err := gelf.Decompress(in, 1024)
		if err != nil || !bytes.Equal(out, plain) {
			t.Errorf("%s: %q %v", name, out, err)
		}
	}
	bomb := gz(bytes.Repeat([]byte("a"), 10<<20)) // 10 MiB inflated from ~10 KiB
	if _, err := gelf.Decompress(bomb, 1<<20); err == nil {
		t.Fatal("decompression bomb accepted")
	}
	for _, bad := range [][]byte{nil, []byte("plain text"), {0x1f, 0x8b, 0, 0}, {0x78, 0x9c, 1, 2, 3}} {
		if _, err := gelf.Decompress(bad, 1024); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestTCPNullFramedAndGarbage(t *testing.T) {
	srv, s := listen(t)
	c, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(c, `{"version":"1.1","host":"a","short_message":"one"}`+"\x00")
	fmt.Fprint(c, "garbage that is not GELF\x00")
	fmt.Fprint(c, `{"version":"1.1","host":"a","short_message":"two"}`+"\x00"+`{"version":"1.1","host":"a","short_message":"three"}`+"\n")
	big := `{"short_message":"` + strings.Repeat("z", 300<<10) + `"}` + "\x00" // over max_message_bytes
	fmt.Fprint(c, big)
	fmt.Fprint(c, `{"version":"1.1","host":"a","short_message":"four"}`+"\x00")
	c.Close()
	msgs := s.wait(t, 4)
	var got []string
	for _, m := range msgs {
		got = append(got, gjson.GetBytes(m, "short_message").String())
	}
	if strings.Join(got, ",") != "one,two,three,four" {
		t.Fatalf("got %v", got)
	}
	// UDP garbage: counted, no crash, the server still answers.
	u, _ := net.Dial("udp", srv.Addr())
	for _, p := range [][]byte{{}, {0x1e}, {0x1e, 0x0f, 1, 2}, []byte("nope"), {0x1f, 0x8b, 9}} {
		u.Write(p)
	}
	u.Write([]byte(`{"short_message":"after garbage"}`))
	u.Close()
	s.wait(t, 5)
}

func TestMapDockerAndApplicationJSON(t *testing.T) {
	docker := []byte(`{"version":"1.1","host":"node-7","short_message":"{\"level\":\"warn\",\"msg\":\"slow query\",\"request_id\":\"abc\",\"time\":\"2026-11-26T10:00:00.123Z\"}","timestamp":1764151200.456,"level":6,"_container_id":"c0ffee","_container_name":"orders","_image_name":"shop/orders:1.2","_image_id":"sha256:1","_command":"/orders","_tag":"c0ffee","_created":"2026-11-26T09:00:00Z","_env":"prod"}`)
	line, ok := gelf.Map(docker)
	if !ok {
		t.Fatal("not mapped")
	}
	want := map[string]string{
		"msg": "slow query", "level": "warn", "request_id": "abc", "time": "2026-11-26T10:00:00.123Z",
		"host.name": "node-7", "container.id": "c0ffee", "container.name": "orders", "container.image.name": "shop/orders:1.2",
		"container.image.id": "sha256:1", "process.command_line": "/orders", "container.tag": "c0ffee", "env": "prod",
	}
	for path, v := range want {
		if got := gjson.GetBytes(line, path).String(); got != v {
			t.Errorf("%s = %q, want %q in %s", path, got, v, line)
		}
	}
	if gjson.GetBytes(line, "timestamp").Exists() {
		t.Errorf("GELF timestamp overrode the application's own time: %s", line)
	}
	plain := []byte(`{"version":"1.0","host":"py","short_message":"boom","full_message":"Traceback ...","timestamp":1764151200.5,"level":3,"facility":"payments","file":"/app/pay.py","line":42,"_request_id":"r9"}`)
	line, _ = gelf.Map(plain)
	for path, v := range map[string]string{"message": "boom", "full_message": "Traceback ...", "level": "3", "timestamp": "1764151200.5",
		"log.logger": "payments", "log.origin.file.name": "/app/pay.py", "log.origin.file.line": "42", "request_id": "r9", "host.name": "py"} {
		if got := gjson.GetBytes(line, path).String(); got != v {
			t.Errorf("%s = %q, want %q in %s", path, got, v, line)
		}
	}
	if _, ok := gelf.Map([]byte(`[1,2]`)); ok {
		t.Error("mapped a non-object")
	}
}

// Datagrams the kernel already holds when the server closes were sent and
// cannot be sent again: Close handles them before closing the socket (a
// shipper restarting lost the ones its reader had not reached yet).
func TestCloseHandlesWhatUDPAlreadyHolds(t *testing.T) {
	cfg := gelf.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	var n atomic.Int64
	slow := func([]byte, string) { time.Sleep(2 * time.Millisecond); n.Add(1) }
	srv, err := gelf.Listen(cfg, slow, quiet)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("udp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const sent = 200 // queued behind the slow handler: ~0.4 s of work
	for i := 0; i < sent; i++ {
		fmt.Fprintf(conn, `{"version":"1.1","host":"h","short_message":"m%d"}`, i)
	}
	srv.Close()
	if got := n.Load(); got != sent {
		t.Fatalf("handled %d of %d datagrams received before Close", got, sent)
	}
}
