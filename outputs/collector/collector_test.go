package collector_test

import (
	"bufio"
	"bytes"
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
	calls    atomic.Int32
	answer   func(call int32, w http.ResponseWriter) bool
}

func (f *fakeCollector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := f.calls.Add(1)
	if f.answer != nil && f.answer(n, w) {
		return
	}
	body, err := estest.ReadBody(r)
	if err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	sc := bufio.NewScanner(bytes.NewReader(body))
	f.mu.Lock()
	for sc.Scan() {
		var e pipeline.Envelope
		if !pipeline.ParseEnvelope(sc.Bytes(), &e) {
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
