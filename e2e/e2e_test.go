// Package e2e runs shipper, collector and the Elasticsearch stand-in in one
// process and checks the delivery guarantees end to end.
package e2e

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/logweave/logweave/collector"
	"github.com/logweave/logweave/filters"
	"github.com/logweave/logweave/internal/estest"
	"github.com/logweave/logweave/shipper"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startCollector runs a collector with its buffer and file output under
// dir, indexing into esURL when given; opts adjust the configuration.
func startCollector(t testing.TB, dir, esURL string, opts ...func(*collector.Config)) *collector.Collector {
	t.Helper()
	cfg := collector.DefaultConfig()
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.Buffer.Path = filepath.Join(dir, "buffer")
	cfg.Buffer.SegmentBytes = 1 << 20
	cfg.FileOutput.Path = filepath.Join(dir, "out")
	if esURL != "" {
		cfg.Elasticsearch.URLs = []string{esURL}
		cfg.Elasticsearch.RetryInitial = 10 * time.Millisecond
		cfg.Elasticsearch.RetryMax = 100 * time.Millisecond
	}
	for _, o := range opts {
		o(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	c, err := collector.New(cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	c.DrainTimeout = 200 * time.Millisecond
	c.Start()
	return c
}

func stopCollector(t testing.TB, c *collector.Collector) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

type runningShipper struct {
	*shipper.Shipper
	cancel context.CancelFunc
	done   chan error
}

func startShipper(t testing.TB, dir, collectorAddr string, globs ...string) *runningShipper {
	t.Helper()
	return startShipperFormat(t, dir, collectorAddr, "raw", globs...)
}

func startShipperFormat(t testing.TB, dir, collectorAddr, format string, globs ...string) *runningShipper {
	t.Helper()
	cfg := shipper.DefaultConfig()
	cfg.Collector.URLs = []string{"http://" + collectorAddr}
	cfg.Collector.Linger = 20 * time.Millisecond
	cfg.Collector.MaxEvents = 500
	cfg.State.Path = filepath.Join(dir, "shipper-state")
	cfg.Host.Name = "node-1"
	in := shipper.InputConfig{Type: "file"}
	in.Config = defaultTail()
	in.Paths = globs
	in.ScanInterval = 50 * time.Millisecond
	in.PollInterval = 20 * time.Millisecond
	in.Format = format
	cfg.Inputs = []shipper.InputConfig{in}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return runShipperConfig(t, cfg)
}

func runShipperConfig(t testing.TB, cfg *shipper.Config) *runningShipper {
	t.Helper()
	s, err := shipper.New(cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rs := &runningShipper{Shipper: s, cancel: cancel, done: make(chan error, 1)}
	go func() { rs.done <- s.Run(ctx) }()
	return rs
}

func (rs *runningShipper) stop(t testing.TB) {
	t.Helper()
	rs.cancel()
	select {
	case err := <-rs.done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("shipper did not stop")
	}
}

// corpus writes n lines split over two files: 5% are not JSON; the JSON
// lines carry their time in different fields and formats and straddle the
// UTC midnight between 2026-11-25 and 2026-11-26. It returns, per sequence
// number, the index the line belongs in ("" for lines without a time, whose
// index depends on when they are read).
type corpus struct {
	files []string
	index map[int]string
	plain map[int]string
}

func writeCorpus(t *testing.T, dir string, n int, during func(written int)) *corpus {
	t.Helper()
	c := &corpus{index: map[int]string{}, plain: map[int]string{}}
	var fs []*os.File
	for _, name := range []string{"orders.log", "payments.log"} {
		p := filepath.Join(dir, "logs", name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		c.files = append(c.files, p)
		fs = append(fs, f)
	}
	midnight := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	for i := 0; i < n; i++ {
		f := fs[i%2]
		if i%20 == 7 {
			line := fmt.Sprintf("plain text seq=%d: connection reset by peer", i)
			c.plain[i] = line
			fmt.Fprintln(f, line)
		} else {
			ts := midnight.Add(time.Duration(i-n/2) * 10 * time.Millisecond)
			var timeField string
			switch i % 4 {
			case 0:
				timeField = fmt.Sprintf(`"@timestamp":%q`, ts.Format(time.RFC3339Nano))
			case 1:
				timeField = fmt.Sprintf(`"ts":%d`, ts.UnixMilli())
			case 2:
				timeField = fmt.Sprintf(`"time":%q`, ts.In(time.FixedZone("CET", 3600)).Format("2006-01-02T15:04:05.000-07:00"))
			case 3:
				timeField = fmt.Sprintf(`"timestamp":%.3f`, float64(ts.UnixMilli())/1000)
			}
			fmt.Fprintf(f, `{%s,"level":"INFO","msg":"handled order","seq":%d,"service":"svc-%d","request_id":"req-%d"}`+"\n",
				timeField, i, i%2, i/10)
			c.index[i] = "logs-" + ts.Format("2006.01.02")
		}
		if during != nil && i%1000 == 999 {
			during(i + 1)
		}
	}
	return c
}

// check asserts every line is indexed exactly once, in the right index,
// with failures tagged and their text kept.
func (c *corpus) check(t *testing.T, srv *estest.Server, n int) {
	t.Helper()
	seen := map[int64]string{}
	total := 0
	for _, idx := range srv.IndicesMatching("logs-*,logweave-deadletter-*") {
		if !strings.HasPrefix(idx, "logs-") {
			t.Fatalf("unexpected index %s", idx)
		}
		for id, doc := range srv.Docs(idx) {
			total++
			seq := gjson.GetBytes(doc, "seq")
			msg := gjson.GetBytes(doc, "message").String()
			// A plain line's "seq=N:" is read as a key=value pair too
			// (the string "N:"): it is told apart by its message.
			if strings.HasPrefix(msg, "plain text seq=") {
				var s int64
				if _, err := fmt.Sscanf(msg, "plain text seq=%d", &s); err != nil {
					t.Fatalf("doc %s has neither seq nor plain text: %s", id, doc)
				}
				seq = gjson.Parse(fmt.Sprint(s))
				if c.plain[int(s)] != msg {
					t.Fatalf("plain line %d: message %q", s, msg)
				}
				if !strings.Contains(gjson.GetBytes(doc, "tags").Raw, filters.TagJSONParseFailure) {
					t.Fatalf("plain line not tagged: %s", doc)
				}
			} else {
				if want := c.index[int(seq.Int())]; want != idx {
					t.Fatalf("seq %d in %s, want %s: %s", seq.Int(), idx, want, doc)
				}
				if gjson.GetBytes(doc, "tags").Exists() {
					t.Fatalf("JSON line tagged: %s", doc)
				}
				if gjson.GetBytes(doc, "http.request.id").String() != fmt.Sprintf("req-%d", seq.Int()/10) {
					t.Fatalf("request id missing: %s", doc)
				}
			}
			if prev, dup := seen[seq.Int()]; dup {
				t.Fatalf("seq %d indexed twice: %s and %s", seq.Int(), prev, id)
			}
			seen[seq.Int()] = id
			if gjson.GetBytes(doc, "event.id").String() != id {
				t.Fatalf("_id %s differs from event.id: %s", id, doc)
			}
		}
	}
	if total != n || len(seen) != n {
		t.Fatalf("indexed %d documents for %d distinct lines, want %d", total, len(seen), n)
	}
}

const corpusLines = 10_000

func TestEndToEndEveryLineOnceInItsDailyIndex(t *testing.T) {
	dir := t.TempDir()
	srv := estest.New()
	defer srv.Close()
	col := startCollector(t, dir, srv.URL)
	defer stopCollector(t, col)
	// Half the corpus exists before the shipper starts; the rest is
	// appended while it runs.
	var once sync.Once
	var sh *runningShipper
	c := writeCorpus(t, dir, corpusLines, func(written int) {
		if written >= corpusLines/2 {
			once.Do(func() { sh = startShipper(t, dir, col.Addr(), filepath.Join(dir, "logs", "*.log")) })
		}
	})
	defer sh.stop(t)
	eventually(t, 60*time.Second, "all lines indexed", func() bool { return srv.Count("logs-*") >= corpusLines })
	time.Sleep(200 * time.Millisecond) // anything extra would show now
	c.check(t, srv, corpusLines)
	for _, day := range []string{"logs-2026.11.25", "logs-2026.11.26"} {
		if len(srv.Docs(day)) < 4000 {
			t.Fatalf("%s holds only %d documents", day, len(srv.Docs(day)))
		}
	}
}

func TestShipperRestartedMidStreamResumesWithoutGapOrDuplicate(t *testing.T) {
	dir := t.TempDir()
	srv := estest.New()
	defer srv.Close()
	col := startCollector(t, dir, srv.URL)
	defer stopCollector(t, col)
	c := writeCorpus(t, dir, corpusLines, nil)
	glob := filepath.Join(dir, "logs", "*.log")

	sh := startShipper(t, dir, col.Addr(), glob)
	eventually(t, 30*time.Second, "a first part acknowledged", func() bool { return sh.Acked() >= 2000 })
	sh.stop(t)
	first := sh.Acked()
	if first >= corpusLines {
		t.Fatalf("shipper finished (%d) before it was stopped; the test proves nothing", first)
	}
	eventually(t, 30*time.Second, "the first run's events indexed", func() bool { return srv.Count("logs-*") >= int(first) })
	_, itemsBefore := srv.BulkStats()

	sh = startShipper(t, dir, col.Addr(), glob)
	defer sh.stop(t)
	eventually(t, 60*time.Second, "all lines indexed", func() bool { return srv.Count("logs-*") >= corpusLines })
	time.Sleep(200 * time.Millisecond)
	c.check(t, srv, corpusLines)
	// The second run resumed at the checkpoint: it sent what the first had
	// not delivered, not the whole corpus again.
	if second := sh.Acked(); first+second != corpusLines {
		t.Fatalf("first run acknowledged %d, second %d: want %d together (resent or skipped lines)", first, second, corpusLines)
	}
	if _, items := srv.BulkStats(); items-itemsBefore != corpusLines-int(first) {
		t.Fatalf("second run indexed %d items for %d remaining lines", items-itemsBefore, corpusLines-int(first))
	}
}

func TestCollectorRestartedDeliversWhatItsBufferHeld(t *testing.T) {
	dir := t.TempDir()
	srv := estest.New()
	defer srv.Close()
	srv.Down.Store(503) // Elasticsearch is down: events pile up in the buffer
	col := startCollector(t, dir, srv.URL)
	c := writeCorpus(t, dir, 3000, nil)
	sh := startShipper(t, dir, col.Addr(), filepath.Join(dir, "logs", "*.log"))
	eventually(t, 30*time.Second, "every line acknowledged by the collector", func() bool { return sh.Acked() >= 3000 })
	sh.stop(t)
	stopCollector(t, col)
	if n := srv.Count("logs-*"); n != 0 {
		t.Fatalf("%d documents indexed while Elasticsearch was down", n)
	}

	srv.Down.Store(0)
	col = startCollector(t, dir, srv.URL)
	defer stopCollector(t, col)
	eventually(t, 30*time.Second, "buffered events delivered after restart", func() bool { return srv.Count("logs-*") >= 3000 })
	time.Sleep(100 * time.Millisecond)
	c.check(t, srv, 3000)
}
