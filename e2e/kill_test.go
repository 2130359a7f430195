package e2e

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/logweave/logweave/internal/estest"
	"github.com/tidwall/gjson"
)

// buildBinaries builds the collector and shipper as CI and users build them.
func buildBinaries(t *testing.T) (collectorBin, shipperBin string) {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"collector", "shipper"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, name), "../cmd/"+name)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", name, err, out)
		}
	}
	return filepath.Join(dir, "collector"), filepath.Join(dir, "shipper")
}

// freeTCPAddr is a loopback address nothing listens on now.
func freeTCPAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// spawnCollector starts the collector binary and waits until addr answers.
func spawnCollector(t *testing.T, logPath, bin, cfgPath, addr string) *process {
	t.Helper()
	p := spawn(t, logPath, bin, "-config", cfgPath)
	eventually(t, 10*time.Second, "collector up", func() bool {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	return p
}

type process struct {
	t    *testing.T
	cmd  *exec.Cmd
	done chan struct{}
	// peakKiB is the process's VmHWM as /proc last showed it (polled while
	// it runs). Not the rusage of wait4: a child's ru_maxrss starts from
	// its parent's RSS at fork and survives exec, so it would count this
	// test's memory.
	peakKiB atomic.Int64
}

// usage is what the process spent over its whole life (after it ended).
func (p *process) usage(name string) usage {
	u := usageOf(name, p.cmd.ProcessState)
	u.peakKiB = p.peakKiB.Load()
	return u
}

func spawn(t *testing.T, logPath, bin string, args ...string) *process {
	t.Helper()
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{t: t, cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); lf.Close(); close(p.done) }()
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			if k := procStatusKiB(cmd.Process.Pid, "VmHWM"); k > p.peakKiB.Load() {
				p.peakKiB.Store(k)
			}
			select {
			case <-p.done:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(p.kill)
	return p
}

func (p *process) kill() {
	p.cmd.Process.Kill()
	<-p.done
}

func (p *process) term() {
	p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		p.t.Errorf("%s did not stop on SIGINT", p.cmd.Path)
		p.kill()
	}
}

// TestKilledProcessesLoseNothing kills the shipper and the collector with
// SIGKILL while lines are being written, shipped and indexed, restarts
// them, and checks that every line is in Elasticsearch exactly once.
func TestKilledProcessesLoseNothing(t *testing.T) {
	collectorBin, shipperBin := buildBinaries(t)
	dir := t.TempDir()
	srv := estest.New()
	defer srv.Close()
	addr := freeTCPAddr(t)
	colCfg := filepath.Join(dir, "collector.yaml")
	os.WriteFile(colCfg, []byte(fmt.Sprintf(`
http: {listen: %q}
buffer: {path: %q, segment_bytes: 64KiB, max_bytes: 64MiB}
elasticsearch:
  urls: [%q]
  retry_initial: 10ms
  retry_max: 100ms
  breaker_cooldown: 500ms
indexer: {batch_size: 300}
`, addr, filepath.Join(dir, "buffer"), srv.URL)), 0o644)
	logFile := filepath.Join(dir, "logs", "app.log")
	os.MkdirAll(filepath.Dir(logFile), 0o755)
	shipCfg := filepath.Join(dir, "shipper.yaml")
	os.WriteFile(shipCfg, []byte(fmt.Sprintf(`
collector: {urls: ["http://%s"], linger: 20ms, batch_max_events: 200}
state: {path: %q}
host: {name: node-1}
inputs:
  - type: file
    paths: [%q]
    scan_interval: 50ms
    poll_interval: 10ms
`, addr, filepath.Join(dir, "state"), filepath.Join(dir, "logs", "*.log"))), 0o644)

	startCol := func() *process {
		return spawnCollector(t, filepath.Join(dir, "collector.log"), collectorBin, colCfg, addr)
	}
	startShip := func() *process {
		return spawn(t, filepath.Join(dir, "shipper.log"), shipperBin, "-config", shipCfg)
	}

	const total = 20_000
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the application, writing steadily
		defer wg.Done()
		f, err := os.Create(logFile)
		if err != nil {
			t.Error(err)
			return
		}
		defer f.Close()
		for i := 0; i < total; i++ {
			fmt.Fprintf(f, `{"ts":%d,"level":"info","msg":"work item","seq":%d,"request_id":"r-%d"}`+"\n", time.Now().UnixMilli(), i, i/4)
			if i%500 == 499 {
				time.Sleep(10 * time.Millisecond)
			}
		}
	}()

	col := startCol()
	ship := startShip()
	eventually(t, 60*time.Second, "some lines indexed", func() bool { return srv.Count("logs-*") > 3000 })
	ship.kill() // mid-stream, checkpoints possibly behind what was sent
	ship = startShip()
	eventually(t, 60*time.Second, "more lines indexed", func() bool { return srv.Count("logs-*") > 8000 })
	srv.Down.Store(503) // let the buffer fill, then kill the collector with a backlog
	time.Sleep(300 * time.Millisecond)
	col.kill()
	time.Sleep(300 * time.Millisecond) // the shipper retries against nothing
	srv.Down.Store(0)
	col = startCol()
	eventually(t, 60*time.Second, "more lines indexed after the collector restart", func() bool { return srv.Count("logs-*") > 12000 })
	ship.kill()
	col.kill()
	col = startCol()
	ship = startShip()
	wg.Wait()
	eventually(t, 120*time.Second, "every line indexed", func() bool { return srv.Count("logs-*") >= total })
	time.Sleep(300 * time.Millisecond)
	ship.term()
	col.term()

	seen := make(map[int64]bool, total)
	n := 0
	for _, idx := range srv.IndicesMatching("logs-*,logweave-deadletter-*") {
		for id, doc := range srv.Docs(idx) {
			n++
			seq := gjson.GetBytes(doc, "seq").Int()
			if seen[seq] {
				t.Fatalf("seq %d indexed twice (id %s)", seq, id)
			}
			seen[seq] = true
		}
	}
	if n != total || len(seen) != total {
		t.Fatalf("%d documents, %d distinct lines; want %d", n, len(seen), total)
	}
	_, items := srv.BulkStats()
	t.Logf("%d lines, %d bulk items received (the difference was replayed and overwritten by id)", total, items)
}
