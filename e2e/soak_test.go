package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/logweave/logweave/internal/estest"
	"github.com/logweave/logweave/internal/smallfs"
	"github.com/tidwall/gjson"
)

// TestSoak runs the real shipper and collector binaries under steady load
// while Elasticsearch cycles through the faults of issue 11 — refused
// credentials (401), a proxy's size limit (413), requests that never
// answer, an outage (503), item 429s — and the collector's buffer disk
// fills and empties. At the end every line is in Elasticsearch exactly
// once, and each process's peak RSS stayed under its bound.
//
// 40 s in `make test`; `make soak` runs it for 10 minutes
// (LOGWEAVE_SOAK=10m).
func TestSoak(t *testing.T) {
	duration := 40 * time.Second
	if v := os.Getenv("LOGWEAVE_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("LOGWEAVE_SOAK: %v", err)
		}
		duration = d
	}
	const rate = 1000 // lines per second
	const (
		collectorRSSBound = 256 << 10 // KiB
		shipperRSSBound   = 64 << 10
	)
	collectorBin, shipperBin := buildBinaries(t)
	dir := t.TempDir()
	bufDir := smallfs.Mount(t, 24<<20)
	srv := estest.New()
	defer srv.Close()
	addr := freeTCPAddr(t)
	colCfg := filepath.Join(dir, "collector.yaml")
	os.WriteFile(colCfg, []byte(fmt.Sprintf(`
http: {listen: %q}
buffer: {path: %q, segment_bytes: 1MiB, max_bytes: 256MiB}
elasticsearch:
  urls: [%q]
  retry_initial: 20ms
  retry_max: 1s
  breaker_failures: 3
  breaker_cooldown: 1s
  request_timeout: 1s
correlation: {window: 2s}
indexer: {batch_size: 1000}
`, addr, bufDir, srv.URL)), 0o644)
	logFile := filepath.Join(dir, "logs", "app.log")
	os.MkdirAll(filepath.Dir(logFile), 0o755)
	shipCfg := filepath.Join(dir, "shipper.yaml")
	os.WriteFile(shipCfg, []byte(fmt.Sprintf(`
collector: {urls: ["http://%s"], linger: 50ms, retry_max: 2s}
state: {path: %q}
host: {name: node-1}
inputs:
  - type: file
    paths: [%q]
`, addr, filepath.Join(dir, "state"), filepath.Join(dir, "logs", "*.log"))), 0o644)

	col := spawnCollector(t, filepath.Join(dir, "collector.log"), collectorBin, colCfg, addr)
	ship := spawn(t, filepath.Join(dir, "shipper.log"), shipperBin, "-config", shipCfg)

	// The application writes steadily for the whole run.
	var written atomic.Int64
	stopApp := make(chan struct{})
	var app sync.WaitGroup
	app.Add(1)
	go func() {
		defer app.Done()
		f, err := os.Create(logFile)
		if err != nil {
			t.Error(err)
			return
		}
		defer f.Close()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for seq := 0; ; {
			select {
			case <-stopApp:
				return
			case <-tick.C:
			}
			var b strings.Builder
			for i := 0; i < rate/100; i++ {
				fmt.Fprintf(&b, `{"@timestamp":"%s","level":"info","service":"svc-%d","msg":"work item","seq":%d,"request_id":"r-%d"}`+"\n",
					time.Now().UTC().Format(time.RFC3339Nano), seq%4, seq, seq/4)
				seq++
			}
			f.WriteString(b.String())
			written.Store(int64(seq))
		}
	}()

	// The faults, in turn, until the last sixth of the run.
	type fault struct {
		name       string
		start, end func()
		long       bool // twice the phase, at least 4 s: several request_timeouts
	}
	var filler string
	faults := []fault{
		{"healthy", func() {}, func() {}, false},
		{"401 (rotated password)", func() { srv.Down.Store(401) }, func() { srv.Down.Store(0) }, false},
		{"30% item 429s", func() {
			srv.SetFault(func(index, id string, doc []byte) (int, string, string) {
				if rand.IntN(10) < 3 {
					return 429, "es_rejected_execution_exception", "rejected execution"
				}
				return 0, "", ""
			})
		}, func() { srv.SetFault(nil) }, false},
		{"hang (no answer)", func() { srv.Hang.Store(true) }, func() { srv.Hang.Store(false) }, true},
		{"413 above 32 KiB", func() { srv.MaxContentLength.Store(32 << 10) }, func() { srv.MaxContentLength.Store(0) }, false},
		{"503 (outage)", func() { srv.Down.Store(503) }, func() { srv.Down.Store(0) }, false},
		{"buffer disk full", func() { filler = smallfs.Fill(t, bufDir) }, func() { os.Remove(filler) }, false},
	}
	phase := max(duration/(6*time.Duration(len(faults))), 2*time.Second)
	faultsUntil := time.Now().Add(duration * 5 / 6)
	var peakCol, peakShip int64
	sample := func() {
		peakCol = max(peakCol, vmHWM(t, col.cmd.Process.Pid))
		peakShip = max(peakShip, vmHWM(t, ship.cmd.Process.Pid))
	}
	for i := 0; time.Now().Before(faultsUntil); i++ {
		f := faults[i%len(faults)]
		f.start()
		d := phase
		if f.long {
			d = max(2*phase, 4*time.Second)
		}
		end := time.Now().Add(d)
		for time.Now().Before(end) {
			time.Sleep(200 * time.Millisecond)
			sample()
		}
		f.end()
		t.Logf("%s for %s: %d lines written, %d indexed", f.name, d, written.Load(), srv.Count("logs-*"))
	}
	time.Sleep(time.Until(faultsUntil.Add(duration / 6)))
	close(stopApp)
	app.Wait()
	total := written.Load()
	eventually(t, 3*time.Minute, fmt.Sprintf("all %d lines indexed", total), func() bool {
		sample()
		return int64(srv.Count("logs-*")) >= total
	})
	time.Sleep(time.Second)
	sample()
	ship.term()
	col.term()
	colLog, _ := os.ReadFile(filepath.Join(dir, "collector.log"))
	for _, want := range []string{"refused the credentials", "request_timeout", "too large (413)", "disk full", "circuit breaker open"} {
		if !strings.Contains(string(colLog), want) {
			t.Errorf("the collector's log never said %q: the fault did not happen or was not told", want)
		}
	}
	if t.Failed() {
		for _, l := range strings.Split(string(colLog), "\n") {
			if strings.Contains(l, "WARN") || strings.Contains(l, "ERROR") {
				t.Log(l)
			}
		}
	}

	seen := make(map[int64]bool, total)
	n := 0
	for _, idx := range srv.IndicesMatching("logs-*") {
		for id, doc := range srv.Docs(idx) {
			n++
			seq := gjson.GetBytes(doc, "seq").Int()
			if seen[seq] {
				t.Fatalf("seq %d indexed twice (id %s)", seq, id)
			}
			seen[seq] = true
		}
	}
	if int64(n) != total || int64(len(seen)) != total {
		t.Fatalf("%d documents, %d distinct lines; want %d", n, len(seen), total)
	}
	if d := srv.Count("logweave-deadletter-*"); d != 0 {
		t.Errorf("%d dead letters: nothing here was the documents' fault", d)
	}
	_, items := srv.BulkStats()
	t.Logf("soak %s: %d lines, each indexed once (%d bulk items sent, retries included); %d traces; peak RSS collector %d MiB (bound %d), shipper %d MiB (bound %d)",
		duration, total, items, srv.Count("traces-*"), peakCol>>10, collectorRSSBound>>10, peakShip>>10, shipperRSSBound>>10)
	if peakCol > collectorRSSBound || peakShip > shipperRSSBound {
		t.Fatalf("peak RSS over its bound: collector %d KiB, shipper %d KiB", peakCol, peakShip)
	}
}

// vmHWM is a process's peak RSS in KiB (0 once it has ended).
func vmHWM(t *testing.T, pid int) int64 { return procStatusKiB(pid, "VmHWM") }

// procStatusKiB is a KiB figure of /proc/PID/status (VmRSS, VmHWM ...), 0
// once the process has ended.
func procStatusKiB(pid int, field string) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(v), "%d", &kb)
			return kb
		}
	}
	return 0
}
