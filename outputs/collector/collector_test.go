package collector_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/logweave/logweave/internal/estest"
	"github.com/logweave/logweave/internal/logtest"
	"github.com/logweave/logweave/outputs/collector"
	"github.com/logweave/logweave/pipeline"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// fakeCollector counts the envelopes of accepted batches; answer decides
// each request's status (0 means 200).
type fakeCollector struct {
	mu       sync.Mutex
	accepted []string
	framed   int // batches that came in the binary framing
	calls    atomic.Int32
	answer   func(call int32, w http.ResponseWriter) bool
}

func (f *fakeCollector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := f.calls.Add(1)
	if f.answer != nil && f.answer(n, w) {
		return
	}
	envs, err := estest.ReadEnvelopes(r)
	if err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	f.mu.Lock()
	if r.Header.Get("Content-Type") == pipeline.FramesContentType {
		f.framed++
	}
	for _, e := range envs {
		if e.ID == "" {
			f.mu.Unlock()
			http.Error(w, "not an envelope", 400)
			return
		}
		f.accepted = append(f.accepted, string(e.Line))
	}
	f.mu.Unlock()
	fmt.Fprint(w, `{"accepted":1}`)
}

func runSender(t *testing.T, urls []string, n int) (acked []string, elapsed time.Duration) {
	return runSenderLog(t, quiet, urls, n)
}

func runSenderLog(t *testing.T, log *slog.Logger, urls []string, n int) (acked []string, elapsed time.Duration) {
	t.Helper()
	cfg := collector.DefaultConfig()
	cfg.URLs = urls
	cfg.MaxEvents = 10
	cfg.Linger = 10 * time.Millisecond
	if err := cfg.Validate("collector"); err != nil {
		t.Fatal(err)
	}
	in := make(chan collector.Item)
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	done := make(chan struct{})
	go func() {
		snd, err := collector.NewSender(cfg, log)
		if err != nil {
			t.Error(err)
			close(done)
			return
		}
		snd.Run(ctx, in, func(b []collector.Item) {
			mu.Lock()
			for _, it := range b {
				acked = append(acked, string(it.Envelope.Line))
			}
			mu.Unlock()
		}, time.Second)
		close(done)
	}()
	start := time.Now()
	for i := 0; i < n; i++ {
		in <- collector.Item{Envelope: pipeline.Envelope{ID: fmt.Sprint(i), Line: []byte(fmt.Sprintf("line %d", i))}}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		k := len(acked)
		mu.Unlock()
		if k >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	elapsed = time.Since(start)
	cancel()
	<-done
	return acked, elapsed
}

func TestSenderDeliversInOrderAndAcksOnlyAccepted(t *testing.T) {
	fc := &fakeCollector{answer: func(call int32, w http.ResponseWriter) bool {
		if call%3 == 0 {
			http.Error(w, "boom", 503)
			return true
		}
		return false
	}}
	srv := httptest.NewServer(fc)
	defer srv.Close()
	acked, _ := runSender(t, []string{srv.URL}, 55)
	if len(acked) != 55 {
		t.Fatalf("acked %d", len(acked))
	}
	for i, a := range acked {
		if a != fmt.Sprintf("line %d", i) {
			t.Fatalf("ack %d is %q: out of order", i, a)
		}
	}
	if len(fc.accepted) != 55 {
		t.Fatalf("collector accepted %d", len(fc.accepted))
	}
	if fc.framed == 0 {
		t.Fatal("no batch came in the binary framing")
	}
}

func TestSenderHonoursRetryAfter(t *testing.T) {
	fc := &fakeCollector{answer: func(call int32, w http.ResponseWriter) bool {
		if call == 1 {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "buffer full", http.StatusTooManyRequests)
			return true
		}
		return false
	}}
	srv := httptest.NewServer(fc)
	defer srv.Close()
	acked, elapsed := runSender(t, []string{srv.URL}, 5)
	if len(acked) != 5 {
		t.Fatalf("acked %d", len(acked))
	}
	if elapsed < time.Second {
		t.Fatalf("retried after %s, before the 1 s the collector asked for", elapsed)
	}
}

func TestSenderFailsOverToTheNextCollector(t *testing.T) {
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "down", 503) }))
	defer down.Close()
	fc := &fakeCollector{}
	up := httptest.NewServer(fc)
	defer up.Close()
	acked, _ := runSender(t, []string{down.URL, up.URL}, 20)
	if len(acked) != 20 || len(fc.accepted) != 20 {
		t.Fatalf("acked %d, accepted by the second collector %d", len(acked), len(fc.accepted))
	}
}

// A collector that keeps failing is skipped while its breaker is open:
// when the healthy one hiccups, the sender does not go back to the dead one
// each time.
func TestSenderBreakerSkipsAFailingCollector(t *testing.T) {
	var downCalls atomic.Int32
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		downCalls.Add(1)
		http.Error(w, "down", 503)
	}))
	defer down.Close()
	fc := &fakeCollector{answer: func(call int32, w http.ResponseWriter) bool {
		if call%3 == 0 {
			http.Error(w, "hiccup", 503)
			return true
		}
		return false
	}}
	up := httptest.NewServer(fc)
	defer up.Close()
	acked, _ := runSender(t, []string{down.URL, up.URL}, 100)
	if len(acked) != 100 {
		t.Fatalf("acked %d", len(acked))
	}
	// Three failures open it; with two batches in flight (parallel: 2) one
	// more attempt may already be on its way when it opens.
	if n := downCalls.Load(); n > 3+1 {
		t.Fatalf("the failing collector was tried %d times; its breaker should have opened after 3", n)
	}
}

// A collector that failed and then accepts again is said to have recovered,
// once.
func TestSenderSaysWhenACollectorRecovers(t *testing.T) {
	fc := &fakeCollector{answer: func(call int32, w http.ResponseWriter) bool {
		if call <= 2 { // fewer than breaker_failures: no cooldown to wait out
			http.Error(w, "down", http.StatusServiceUnavailable)
			return true
		}
		return false
	}}
	srv := httptest.NewServer(fc)
	defer srv.Close()
	log, logs := logtest.New(slog.LevelInfo)
	acked, _ := runSenderLog(t, log, []string{srv.URL}, 25)
	if len(acked) != 25 {
		t.Fatalf("acked %d", len(acked))
	}
	if n := strings.Count(logs.String(), "collector accepts batches again"); n != 1 {
		t.Errorf("recovery said %d times, want once:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "after_failures=2") {
		t.Errorf("recovery does not say after how many failures:\n%s", logs.String())
	}
}

// A rolling upgrade, shippers first: a collector of the version before the
// binary framing (it serves only /v1/events, NDJSON) gets NDJSON from the
// first refused batch on, and loses nothing.
func TestSenderFallsBackToNDJSONForAnOlderCollector(t *testing.T) {
	old := &fakeCollector{}
	mux := http.NewServeMux()
	mux.Handle("/v1/events", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ce := r.Header.Get("Content-Encoding"); ce != "" && ce != "gzip" && ce != "zstd" {
			http.Error(w, "unsupported Content-Encoding "+ce, http.StatusUnsupportedMediaType) // as it answered
			return
		}
		old.ServeHTTP(w, r)
	}))
	var v2calls atomic.Int32
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { v2calls.Add(1); http.NotFound(w, r) })
	srv := httptest.NewServer(mux)
	acked, _ := runSender(t, []string{srv.URL}, 55)
	if len(acked) != 55 || len(old.accepted) != 55 {
		t.Fatalf("acked %d, the older collector accepted %d of 55", len(acked), len(old.accepted))
	}
	seen := map[string]bool{}
	for _, a := range old.accepted {
		seen[a] = true
	}
	for i := range 55 {
		if !seen[fmt.Sprintf("line %d", i)] {
			t.Fatalf("line %d missing", i)
		}
	}
	if old.framed != 0 || v2calls.Load() < 1 {
		t.Fatalf("framed batches %d, /v2/events tried %d times", old.framed, v2calls.Load())
	}
	if n := v2calls.Load(); n > 2 {
		t.Errorf("the framing was tried %d times against a collector that refused it", n)
	}

}

// One sender across the upgrade: while the collector is away the sender
// forgets that it refused the framing, and tries it again when it is back.
func TestSenderTriesTheFramingAgainAfterTheCollectorWasAway(t *testing.T) {
	var upgraded atomic.Bool
	current := &fakeCollector{}
	old := &fakeCollector{}
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if upgraded.Load() {
			current.ServeHTTP(w, r)
			return
		}
		if r.URL.Path != "/v1/events" {
			http.NotFound(w, r)
			return
		}
		old.ServeHTTP(w, r)
		if old.calls.Load() >= 3 && upgraded.CompareAndSwap(false, true) { // the old version is stopped for the upgrade
			srv.CloseClientConnections()
		}
	}))
	defer srv.Close()
	// Connections cut once: the sender sees the collector unreachable.
	acked, _ := runSender(t, []string{srv.URL}, 100)
	if len(acked) != 100 || len(old.accepted)+len(current.accepted) < 100 {
		t.Fatalf("acked %d; accepted %d + %d", len(acked), len(old.accepted), len(current.accepted))
	}
	if current.framed == 0 {
		t.Fatalf("the upgraded collector got no framed batch (%d batches)", current.calls.Load())
	}
}

// A proxy in front of the collector that routes only /v1/events (405 or
// 501 for other paths) makes the sender fall back to NDJSON, as an older
// collector does, instead of retrying the framing forever.
func TestSenderFallsBackBehindAProxyThatRoutesOnlyV1(t *testing.T) {
	for _, code := range []int{http.StatusMethodNotAllowed, http.StatusNotImplemented} {
		fc := &fakeCollector{}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/v1/events" {
				http.Error(w, "no route", code)
				return
			}
			fc.ServeHTTP(w, r)
		}))
		acked, _ := runSender(t, []string{srv.URL}, 30)
		srv.Close()
		if len(acked) != 30 || len(fc.accepted) != 30 || fc.framed != 0 {
			t.Fatalf("proxy answering %d: acked %d, accepted %d (framed batches %d)", code, len(acked), len(fc.accepted), fc.framed)
		}
	}
}
