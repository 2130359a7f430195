package shipper_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/logweave/logweave/inputs/tail"
	"github.com/logweave/logweave/internal/estest"
	"github.com/logweave/logweave/outputs/collector"
	"github.com/logweave/logweave/shipper"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// Ready (the shipper's /readyz) is false until the inputs and the sender
// run, false with the reason when checkpoints cannot be saved, and false
// again once the shipper stops.
func TestReadyFollowsRunAndCheckpointSaves(t *testing.T) {
	srv, got := countingCollector(t)
	dir := t.TempDir()
	logs := filepath.Join(dir, "logs")
	os.MkdirAll(logs, 0o755)
	os.WriteFile(filepath.Join(logs, "a.log"), []byte("one\n"), 0o644)

	cfg := shipper.DefaultConfig()
	cfg.Collector.URLs = []string{srv.URL}
	cfg.Collector.Compression = collector.CodecNone
	cfg.Collector.Linger = 10 * time.Millisecond
	cfg.State.Path = filepath.Join(dir, "state")
	in := shipper.InputConfig{Type: "file", Config: tail.DefaultConfig()}
	in.Paths = []string{filepath.Join(logs, "*.log")}
	in.ScanInterval, in.PollInterval = 10*time.Millisecond, 10*time.Millisecond
	cfg.Inputs = []shipper.InputConfig{in}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	s, err := shipper.New(cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if ok, why := s.Ready(); ok || why != "not running" {
		t.Fatalf("before Run: ready=%v %q", ok, why)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	waitFor(t, "ready", func() bool { ok, _ := s.Ready(); return ok && got.Load() == 1 })

	// The checkpoint file's place is taken by a non-empty directory: the
	// next save fails (as on a full or read-only disk, even for root).
	// First wait for the save that follows the first ack: were it to
	// land between the Remove and the MkdirAll below, the file would be
	// back and no save would ever fail.
	cp := filepath.Join(cfg.State.Path, "checkpoints.json")
	waitFor(t, "the first line's checkpoint saved", func() bool {
		b, _ := os.ReadFile(cp)
		return strings.Contains(string(b), `"offset": 4`)
	})
	if err := os.Remove(cp); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(cp, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	f, _ := os.OpenFile(filepath.Join(logs, "a.log"), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("two\n")
	f.Close()
	waitFor(t, "not ready after a failed save", func() bool {
		ok, why := s.Ready()
		return !ok && strings.Contains(why, "cannot save checkpoints")
	})
	os.RemoveAll(cp)
	f, _ = os.OpenFile(filepath.Join(logs, "a.log"), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("three\n")
	f.Close()
	waitFor(t, "ready again after a save", func() bool { ok, _ := s.Ready(); return ok })

	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.Ready(); ok {
		t.Fatal("ready after Run returned")
	}
}

// countingCollector stands in for the collector: it acknowledges every
// batch and counts the lines.
func countingCollector(t *testing.T) (*httptest.Server, *atomic.Int64) {
	var got atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		envs, _ := estest.ReadEnvelopes(r)
		got.Add(int64(len(envs)))
		io.WriteString(w, `{"accepted":1}`)
	}))
	t.Cleanup(srv.Close)
	return srv, &got
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting:", what)
		}
	}
}

// Checkpoints are written at most every state.flush_interval however many
// batches are acknowledged, and what was acknowledged is on disk within
// about that time, while the shipper runs on.
func TestCheckpointsWrittenAtMostEveryFlushInterval(t *testing.T) {
	srv, got := countingCollector(t)
	dir := t.TempDir()
	logs := filepath.Join(dir, "logs")
	os.MkdirAll(logs, 0o755)
	path := filepath.Join(logs, "a.log")
	cfg := shipper.DefaultConfig()
	cfg.Collector.URLs = []string{srv.URL}
	cfg.Collector.Linger = time.Millisecond
	cfg.Collector.MaxEvents = 1 // a batch, and an acknowledgement, per line
	cfg.State.Path = filepath.Join(dir, "state")
	cfg.State.FlushInterval = 300 * time.Millisecond
	in := shipper.InputConfig{Type: "file", Config: tail.DefaultConfig()}
	in.Paths = []string{path}
	in.ScanInterval, in.PollInterval = 10*time.Millisecond, 10*time.Millisecond
	cfg.Inputs = []shipper.InputConfig{in}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	s, err := shipper.New(cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	// Watch the checkpoint file's versions while 200 lines are acknowledged
	// one by one over about a second.
	cp := filepath.Join(cfg.State.Path, "checkpoints.json")
	writes := 0
	var last []byte
	f, _ := os.Create(path)
	var size int64
	start := time.Now()
	for i := range 200 {
		n, _ := fmt.Fprintf(f, "line %d\n", i)
		size += int64(n)
		if i%20 == 0 {
			time.Sleep(100 * time.Millisecond)
		}
		if b, err := os.ReadFile(cp); err == nil && !bytes.Equal(b, last) {
			writes, last = writes+1, b
		}
	}
	f.Close()
	waitFor(t, "all lines acknowledged", func() bool { return got.Load() >= 200 })
	waitFor(t, "the last checkpoint on disk while running", func() bool {
		b, _ := os.ReadFile(cp)
		return bytes.Contains(b, []byte(fmt.Sprintf(`"offset": %d`, size)))
	})
	elapsed := time.Since(start)
	if max := int(elapsed/cfg.State.FlushInterval) + 2; writes > max {
		t.Fatalf("checkpoints written %d times in %s, flush_interval %s", writes, elapsed, cfg.State.FlushInterval)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
