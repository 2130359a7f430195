// Command demo runs logweave end to end on this machine with no Docker,
// Kafka or Elasticsearch: it starts the collector (embedded buffer; file
// output, or Elasticsearch when ELASTICSEARCH_URL is set) and a shipper as
// processes, writes JSON logs of four services that share X-Request-IDs
// (with some plain-text lines), waits until every line is indexed, prints a
// summary, and stops both cleanly. `make demo` runs it.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/tidwall/gjson"

	"github.com/logweave/logweave/pipeline"
)

func main() {
	binDir := flag.String("bin", "bin", "directory holding the collector and shipper binaries")
	dir := flag.String("dir", "data/demo", "working directory (recreated)")
	requests := flag.Int("requests", 400, "requests to simulate")
	flag.Parse()
	if err := run(*binDir, *dir, *requests); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(binDir, dir string, requests int) error {
	start := time.Now()
	esURL := strings.TrimRight(os.Getenv("ELASTICSEARCH_URL"), "/")
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	logs := filepath.Join(dir, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	index := "logs-%{+yyyy.MM.dd}"
	if esURL != "" {
		// A demo index of its own, so counting is exact on a shared cluster.
		index = "logweave-demo-%{+yyyy.MM.dd}"
	}
	// A short correlation window: the demo's requests are over at once.
	colCfg := fmt.Sprintf("http: {listen: %q}\nbuffer: {path: %q}\nfile_output: {path: %q}\ncorrelation: {window: 1s}\nelasticsearch:\n  index: %q\n",
		addr, filepath.Join(dir, "buffer"), filepath.Join(dir, "out"), index)
	if esURL != "" {
		colCfg += fmt.Sprintf("  urls: [%q]\n", esURL)
	}
	shipCfg := fmt.Sprintf("collector:\n  urls: [\"http://%s\"]\n  linger: 100ms\nstate: {path: %q}\ninputs:\n  - type: file\n    paths: [%q]\n    scan_interval: 250ms\n",
		addr, filepath.Join(dir, "shipper-state"), filepath.Join(logs, "*.log"))
	for name, body := range map[string]string{"collector.yaml": colCfg, "shipper.yaml": shipCfg} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			return err
		}
	}
	out := "files in " + filepath.Join(dir, "out")
	if esURL != "" {
		out = "Elasticsearch at " + esURL
	}
	fmt.Printf("logweave demo: collector on %s (embedded disk buffer, output: %s)\n", addr, out)

	col, err := startProc(filepath.Join(binDir, "collector"), dir, "collector", "-c", filepath.Join(dir, "collector.yaml"))
	if err != nil {
		return err
	}
	defer col.stop()
	if err := waitHTTP("http://"+addr+"/healthz", 10*time.Second); err != nil {
		return fmt.Errorf("collector did not come up (see %s): %w", col.logPath, err)
	}
	ship, err := startProc(filepath.Join(binDir, "shipper"), dir, "shipper", "-c", filepath.Join(dir, "shipper.yaml"))
	if err != nil {
		return err
	}
	defer ship.stop()

	gen, err := generate(logs, requests)
	if err != nil {
		return err
	}
	fmt.Printf("generator: wrote %d lines (%d plain text) for %d requests across gateway, auth, inventory, payment\n",
		gen.lines, gen.plain, requests)

	var docs []doc
	deadline := time.Now().Add(40 * time.Second)
	for {
		docs, err = indexed(esURL, dir, index)
		if err == nil && len(docs) >= gen.lines {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d lines indexed after 40s (last error: %v); logs in %s", len(docs), gen.lines, err, dir)
		}
		time.Sleep(200 * time.Millisecond)
	}
	elapsed := time.Since(start)
	if err := ship.stop(); err != nil {
		return fmt.Errorf("shipper: %w", err)
	}
	if err := col.stop(); err != nil {
		return fmt.Errorf("collector: %w", err)
	}
	summary(os.Stdout, docs, gen)
	fmt.Printf("\nall %d lines indexed in %.1fs; collector and shipper stopped cleanly.\n", gen.lines, elapsed.Seconds())
	// The collector wrote every request's trace (at the latest when it
	// stopped); show one as `collector trace` does.
	cfgPath := filepath.Join(dir, "collector.yaml")
	fmt.Printf("\n$ collector trace -c %s %s\n", cfgPath, gen.sample)
	tc := exec.Command(filepath.Join(binDir, "collector"), "trace", "-c", cfgPath, gen.sample)
	tc.Stdout, tc.Stderr = os.Stdout, os.Stderr
	if err := tc.Run(); err != nil {
		return fmt.Errorf("collector trace: %w", err)
	}
	fmt.Printf("\ntry: cat %s/out/traces-*.ndjson | head   ·   configs: %s/collector.yaml, %s/shipper.yaml\n", dir, dir, dir)
	return nil
}

type proc struct {
	cmd     *exec.Cmd
	logPath string
	done    chan error
	stopped bool
	err     error
}

func startProc(bin, dir, name string, args ...string) (*proc, error) {
	logPath := filepath.Join(dir, name+".log")
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("starting %s (run `make build` first): %w", bin, err)
	}
	p := &proc{cmd: cmd, logPath: logPath, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait(); lf.Close() }()
	return p, nil
}

// stop sends SIGTERM and waits; SIGKILL after 20 s.
func (p *proc) stop() error {
	if p.stopped {
		return p.err
	}
	p.stopped = true
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case p.err = <-p.done:
	case <-time.After(20 * time.Second):
		p.cmd.Process.Kill()
		p.err = errors.Join(errors.New("did not stop within 20s"), <-p.done)
	}
	if p.err != nil {
		p.err = fmt.Errorf("%w (log: %s)", p.err, p.logPath)
	}
	return p.err
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func waitHTTP(url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type generated struct {
	lines, plain int
	sample       string // a request id with every service and an error
}

// generate writes the four services' logs the way they would: the gateway
// logs an access line per request, the services log JSON with the request
// id they received, and some lines are plain text (a stack trace, a
// startup banner) as real services print them.
func generate(dir string, requests int) (*generated, error) {
	r := rand.New(rand.NewPCG(1, 2))
	services := []string{"gateway", "auth", "inventory", "payment"}
	files := map[string]*bufio.Writer{}
	var closers []io.Closer
	for _, s := range services {
		f, err := os.Create(filepath.Join(dir, s+".log"))
		if err != nil {
			return nil, err
		}
		closers = append(closers, f)
		files[s] = bufio.NewWriter(f)
	}
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	g := &generated{}
	write := func(svc, line string) {
		files[svc].WriteString(line + "\n")
		g.lines++
	}
	plain := func(svc, line string) { write(svc, line); g.plain++ }
	base := time.Now().UTC().Add(-time.Duration(requests) * 15 * time.Millisecond)
	ts := func(t time.Time) string { return t.Format("2006-01-02T15:04:05.000Z07:00") }
	plain("payment", "Starting payment-service v2.3.1 on port 8083 (pid 4711)")
	paths := []string{"/api/orders", "/api/cart", "/api/checkout", "/api/products/42"}
	for i := 0; i < requests; i++ {
		id := fmt.Sprintf("%016x%016x", r.Uint64(), r.Uint64())
		t0 := base.Add(time.Duration(i) * 15 * time.Millisecond)
		path := paths[r.IntN(len(paths))]
		t := t0.Add(time.Duration(1+r.IntN(3)) * time.Millisecond)
		write("auth", fmt.Sprintf(`{"time":%q,"level":"info","service":"auth","msg":"token verified","request_id":%q,"user":"u%d"}`, ts(t), id, r.IntN(50)))
		t = t.Add(time.Duration(2+r.IntN(8)) * time.Millisecond)
		write("inventory", fmt.Sprintf(`{"ts":%d,"severity":"DEBUG","service":"inventory","message":"stock checked","x_request_id":%q,"sku":"sku-%d"}`, t.UnixMilli(), id, r.IntN(900)))
		status := 200
		if path == "/api/checkout" {
			t = t.Add(time.Duration(10+r.IntN(40)) * time.Millisecond)
			if r.IntN(8) == 0 || g.sample == "" {
				status = 502
				write("payment", fmt.Sprintf(`{"@timestamp":%q,"level":"ERROR","service":"payment","msg":"card processor timeout","requestId":%q,"amount":%d.%02d}`, ts(t), id, r.IntN(200), r.IntN(100)))
				plain("payment", "java.net.SocketTimeoutException: Read timed out")
				plain("payment", "\tat com.example.payment.ProcessorClient.charge(ProcessorClient.java:88)")
				if g.sample == "" {
					g.sample = id
				}
			} else {
				write("payment", fmt.Sprintf(`{"@timestamp":%q,"level":"info","service":"payment","msg":"charged","requestId":%q,"amount":%d.%02d}`, ts(t), id, r.IntN(200), r.IntN(100)))
			}
		}
		t = t.Add(time.Duration(1+r.IntN(3)) * time.Millisecond)
		dur := t.Sub(t0).Seconds()
		// The gateway is nginx: its access log line, stamped when the
		// response went out ($msec), with $request_id and the timings.
		write("gateway", fmt.Sprintf(`203.0.113.%d - - [%s] "POST %s HTTP/1.1" %d %d "-" "curl/8.5.0" request_id=%s request_time=%.3f upstream_response_time=%.3f upstream_addr=10.0.0.5:8080 msec=%d.%03d`,
			1+r.IntN(250), t.Format("02/Jan/2006:15:04:05 -0700"), path, status, 100+r.IntN(900), id, dur, dur*0.9, t.Unix(), t.Nanosecond()/1e6))
		if i%50 == 49 {
			for _, w := range files {
				w.Flush()
			}
		}
	}
	for _, w := range files {
		if err := w.Flush(); err != nil {
			return nil, err
		}
	}
	return g, nil
}

type doc struct {
	index string
	raw   []byte
}

// indexed returns what the output holds: the NDJSON files, or the demo
// indices in Elasticsearch.
func indexed(esURL, dir, pattern string) ([]doc, error) {
	prefix := pipeline.PatternPrefix(pattern)
	if esURL == "" {
		paths, _ := filepath.Glob(filepath.Join(dir, "out", prefix+"*.ndjson"))
		var docs []doc
		for _, p := range paths {
			data, err := os.ReadFile(p)
			if err != nil {
				return nil, err
			}
			idx := strings.TrimSuffix(filepath.Base(p), ".ndjson")
			for _, l := range bytes.Split(data, []byte("\n")) {
				if len(l) > 0 {
					docs = append(docs, doc{idx, l})
				}
			}
		}
		return docs, nil
	}
	http.Post(esURL+"/"+prefix+"*/_refresh", "application/json", nil)
	body := `{"size":10000,"query":{"match_all":{}}}`
	resp, err := http.Post(esURL+"/"+prefix+"*/_search", "application/json", strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("search: %s: %s", resp.Status, data)
	}
	var docs []doc
	for _, h := range gjson.GetBytes(data, "hits.hits").Array() {
		docs = append(docs, doc{h.Get("_index").String(), []byte(h.Get("_source").Raw)})
	}
	return docs, nil
}

func summary(w io.Writer, docs []doc, gen *generated) {
	perIndex := map[string]int{}
	failures := 0
	for _, d := range docs {
		perIndex[d.index]++
		if strings.Contains(gjson.GetBytes(d.raw, "tags").Raw, "_jsonparsefailure") {
			failures++
		}
	}
	fmt.Fprintln(w, "\nevents per index:")
	var names []string
	for n := range perIndex {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-28s %6d\n", n, perIndex[n])
	}
	fmt.Fprintf(w, "parse failures (_jsonparsefailure, kept with their text): %d\n", failures)
}
