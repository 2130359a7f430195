package collector_test

import (
	"compress/gzip"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Hostile bodies: whatever a client sends, the memory a request holds is
// bounded by the configuration, and the collector keeps answering.
func TestHostileBodiesKeepMemoryBounded(t *testing.T) {
	cfg := testConfig(t)
	cfg.Correlation.TracesIndex = ""
	_, base := start(t, cfg)

	// Bodies are generated as they are sent, so that the heap measured is
	// the collector's.
	repeat := func(p []byte, n int) func() io.Reader {
		return func() io.Reader { return io.LimitReader(&cycle{p: p}, int64(len(p)*n)) }
	}
	gz := func(src func() io.Reader, frames int) func() io.Reader {
		return func() io.Reader {
			pr, pw := io.Pipe()
			go func() {
				for i := 0; i < frames; i++ {
					zw, _ := gzip.NewWriterLevel(pw, gzip.BestSpeed)
					if src != nil {
						io.Copy(zw, src())
					}
					if zw.Close() != nil {
						return
					}
				}
				pw.Close()
			}()
			return pr
		}
	}
	send := func(body io.Reader, enc string) int {
		req, _ := http.NewRequest(http.MethodPost, base+"/v1/events", body)
		if enc != "" {
			req.Header.Set("Content-Encoding", enc)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return -1 // the server may close a connection it refused the body of
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 && resp.StatusCode != 413 && resp.StatusCode != 429 {
			t.Logf("answer %s: %s", resp.Status, msg)
		}
		return resp.StatusCode
	}
	cases := []struct {
		name string
		body func() io.Reader
		enc  string
		want []int
	}{
		{"16M newlines, gzip", gz(repeat([]byte("\n"), 16<<20), 1), "gzip", []int{413}}, // 16 MiB once decompressed
		{"2M tiny lines, gzip", gz(repeat([]byte("{}\n"), 2_000_000), 1), "gzip", []int{413}},
		{"200 MB of empty gzip frames", repeat(emptyFrame(), 200<<20/23), "gzip", []int{413, -1}},
		{"30 MB plain body", repeat([]byte(`{"message":"`+strings.Repeat("x", 300)+`"}`+"\n"), 30<<20/315), "", []int{413, -1}},
		{"50k lines", repeat([]byte(`{"message":"fine"}`+"\n"), 50_000), "", []int{200}},
	}
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	for _, c := range cases {
		var wg sync.WaitGroup
		codes := make([]int, 8)
		for i := range codes {
			wg.Add(1)
			go func() { defer wg.Done(); codes[i] = send(c.body(), c.enc) }()
		}
		wg.Wait()
		t.Logf("%s: peak heap %d MiB above the start so far", c.name, (int64(peak.Load())-int64(before.HeapInuse))>>20)
		for _, code := range codes {
			ok := code == 429 // over max_concurrent_requests
			for _, w := range c.want {
				ok = ok || code == w
			}
			if !ok {
				t.Errorf("%s: answered %d, want %v", c.name, code, c.want)
			}
		}
	}
	close(stop)
	<-sampled
	grew := int64(peak.Load()) - int64(before.HeapInuse)
	t.Logf("peak heap in use %d MiB above the start (8 concurrent senders of each body)", grew>>20)
	// 8 requests of at most 8 MiB of body plus a 2,000-line chunk each.
	if grew > 160<<20 {
		t.Fatalf("heap grew by %d MiB: ingest memory is not bounded", grew>>20)
	}
	if code, _ := get(t, base+"/healthz"); code != 200 {
		t.Fatalf("/healthz after the bodies: %d", code)
	}
}

// Slow and idle connections beyond http.max_connections are closed at once:
// the process keeps its file descriptors; read_timeout frees the slots the
// slow ones hold, and then /healthz and ingest answer again, without a
// restart.
func TestSlowConnectionsAreBounded(t *testing.T) {
	cfg := testConfig(t)
	cfg.HTTP.MaxConnections = 50
	cfg.HTTP.ReadTimeout = time.Second
	cfg.Correlation.TracesIndex = ""
	_, base := start(t, cfg)
	addr := strings.TrimPrefix(base, "http://")
	fdsBefore := openFDs()
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < 300; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		// A request whose body never comes.
		fmt.Fprintf(c, "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n{")
		conns = append(conns, c)
	}
	time.Sleep(200 * time.Millisecond)
	// Our 300 client ends are ours; the server side holds at most 50.
	if grew := openFDs() - fdsBefore - 300; grew > 60 {
		t.Fatalf("the server holds %d connections, max_connections is 50", grew)
	}
	eventually(t, 5*time.Second, "/healthz once read_timeout freed the slots", func() bool {
		resp, err := http.Get(base + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	if code, _, body := post(t, base, `{"message":"after"}`+"\n"); code != 200 {
		t.Fatalf("ingest after the slow clients: %d %s", code, body)
	}
	if _, body := get(t, base+"/metrics"); !strings.Contains(body, "logweave_http_connections_rejected_total") {
		t.Fatal("no metric of rejected connections")
	}
}

func emptyFrame() []byte {
	var b strings.Builder
	zw := gzip.NewWriter(&b)
	zw.Close()
	return []byte(b.String())
}

// cycle repeats p without end.
type cycle struct {
	p   []byte
	off int
}

func (c *cycle) Read(b []byte) (int, error) {
	n := 0
	for n < len(b) {
		k := copy(b[n:], c.p[c.off:])
		n += k
		c.off = (c.off + k) % len(c.p)
	}
	return n, nil
}

func openFDs() int {
	fds, _ := os.ReadDir("/proc/self/fd")
	return len(fds)
}
