package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"
)

// runBin runs a binary to its end and returns its exit code and its
// stdout and stderr together.
func runBin(t *testing.T, bin string, env []string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, out.String()
}

func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func assertHas(t *testing.T, what, out string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Errorf("%s: output lacks %q:\n%s", what, w, out)
		}
	}
	if strings.Contains(out, "panic") || strings.Contains(out, "goroutine ") {
		t.Errorf("%s: panicked:\n%s", what, out)
	}
}

// Every start-up failure of the real binaries is one line naming the key,
// the value and the cause, and `validate` fails the same way wherever no
// network is needed to know.
func TestStartFailuresNameKeyValueAndCause(t *testing.T) {
	collectorBin, shipperBin := buildBinaries(t)
	dir := t.TempDir()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyUDP, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busyUDP.Close()
	base := fmt.Sprintf("buffer: {path: %q}\nfile_output: {path: %q}\n", filepath.Join(dir, "buf"), filepath.Join(dir, "out"))
	free := freeTCPAddr(t)
	cases := []struct {
		name, cfg     string
		validateFails bool // known without starting
		wants         []string
	}{
		{"http port in use", fmt.Sprintf("http: {listen: %q}\n", busy.Addr()), false,
			[]string{"http.listen", busy.Addr().String(), "address already in use"}},
		{"http port out of range", "http: {listen: \"127.0.0.1:99999\"}\n", true,
			[]string{"collector.yaml:1:", "http.listen", "99999", "out of range"}},
		{"TLS files missing", fmt.Sprintf("http: {listen: %q, tls: {cert: /nonexistent/cert.pem, key: /nonexistent/key.pem}}\n", free), true,
			[]string{"collector.yaml:1:", "http.tls.cert", "/nonexistent/cert.pem", "no such file"}},
		{"GELF port in use", fmt.Sprintf("http: {listen: %q}\ngelf: {listen: %q}\n", free, busyUDP.LocalAddr()), false,
			[]string{"gelf.listen", busyUDP.LocalAddr().String(), "address already in use"}},
		{"buffer.path not writable", fmt.Sprintf("http: {listen: %q}\nbuffer:\n  path: /dev/null/buffer\n", free), true,
			[]string{"collector.yaml:3:", "buffer.path", "/dev/null/buffer", "not a directory"}},
		{"file_output.path not writable", fmt.Sprintf("http: {listen: %q}\nfile_output:\n  path: /dev/null/out\n", free), true,
			[]string{"collector.yaml:3:", "file_output.path", "/dev/null/out", "not a directory"}},
	}
	for _, c := range cases {
		// The case's keys first, so a key of base it repeats is not a duplicate.
		text := c.cfg
		for _, l := range strings.Split(base, "\n") {
			if l != "" && !strings.Contains(text, strings.SplitN(l, ":", 2)[0]+":") {
				text += l + "\n"
			}
		}
		cfg := writeFile(t, dir, "collector.yaml", text)
		code, out := runBin(t, collectorBin, nil, "run", "-c", cfg, "-log-format", "text")
		if code != 1 {
			t.Errorf("%s: run exited %d, want 1:\n%s", c.name, code, out)
		}
		assertHas(t, c.name+" (run)", out, c.wants...)
		errLines := 0
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, "ERROR") || strings.Contains(l, "invalid configuration") {
				errLines++
			}
		}
		if errLines != 1 {
			t.Errorf("%s: %d error lines, want one:\n%s", c.name, errLines, out)
		}
		code, out = runBin(t, collectorBin, nil, "validate", "-c", cfg)
		if c.validateFails {
			if code != 1 {
				t.Errorf("%s: validate exited %d, want 1 as run:\n%s", c.name, code, out)
			}
			assertHas(t, c.name+" (validate)", out, c.wants...)
		}
	}

	// The shipper: an empty file, a port out of range, keys of another
	// input type. validate and run say the same.
	for name, sc := range map[string]struct {
		cfg   string
		wants []string
	}{
		"empty":               {"# nothing yet\n", []string{"inputs", "none configured"}},
		"port":                {"http: {listen: \":99999\"}\ninputs: [{type: file, paths: [/x/*.log]}]\n", []string{"shipper.yaml:1:", "http.listen", "99999"}},
		"file with gelf":      {"inputs:\n  - type: file\n    paths: [/x/*.log]\n    listen: \":12201\"\n    chunk_timeout: 5s\n", []string{"shipper.yaml:4: inputs[0].listen: not a key of a file input", "shipper.yaml:5: inputs[0].chunk_timeout"}},
		"gelf with paths":     {"inputs:\n  - type: gelf\n    listen: \":12201\"\n    paths: [/x]\n    multiline: {pattern: x}\n", []string{"shipper.yaml:4: inputs[0].paths: not a key of a gelf input", "shipper.yaml:5: inputs[0].multiline"}},
		"forward with paths":  {"inputs:\n  - type: forward\n    listen: \":24224\"\n    paths: [/x]\n    timezone: UTC\n", []string{"shipper.yaml:4: inputs[0].paths: not a key of a forward input", "shipper.yaml:5: inputs[0].timezone"}},
		"syslog bad timezone": {"inputs:\n  - type: syslog\n    listen: \":5514\"\n    timezone: Mars/Olympus\n", []string{"inputs[0].timezone", "Mars/Olympus"}},
		"state":               {"state: {path: /dev/null/state}\ninputs: [{type: file, paths: [/x/*.log]}]\n", []string{"shipper.yaml:1:", "state.path", "/dev/null/state", "not a directory"}},
	} {
		cfg := writeFile(t, dir, "shipper.yaml", sc.cfg)
		for _, sub := range []string{"validate", "run"} {
			code, out := runBin(t, shipperBin, nil, sub, "-c", cfg)
			if code != 1 {
				t.Errorf("shipper %s (%s): exit %d, want 1:\n%s", sub, name, code, out)
			}
			assertHas(t, "shipper "+sub+" "+name, out, sc.wants...)
		}
	}
}

// Value errors are file:line: key.path: problem (expected …), all at once.
func TestConfigValueErrorsAllAtOnceWithPlace(t *testing.T) {
	collectorBin, shipperBin := buildBinaries(t)
	dir := t.TempDir()
	cfg := writeFile(t, dir, "collector.yaml", `http:
  listen: 127.0.0.1:8080
  lisen: x
buffer:
  max_bytes: lots
correlation:
  window: 1d
  max_open_traces: many
  bogus: 2
indexer:
  batch_size: 30s
`)
	code, out := runBin(t, collectorBin, nil, "validate", "-c", cfg)
	if code != 1 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	assertHas(t, "collector", out,
		cfg+":3: http.lisen: unknown key (did you mean listen?)",
		cfg+`:5: buffer.max_bytes: "lots" is not a size (expected`,
		cfg+`:7: correlation.window: "1d" is not a duration (expected`,
		cfg+`:8: correlation.max_open_traces: "many" is not a whole number`,
		cfg+":9: correlation.bogus: unknown key",
		cfg+`:11: indexer.batch_size: "30s" is not a whole number`)
	cfg = writeFile(t, dir, "c2.yaml", "correlation:\n  window: 30\n")
	_, out = runBin(t, collectorBin, nil, "validate", "-c", cfg)
	assertHas(t, "window: 30", out, cfg+":2: correlation.window: 30 is not a duration (expected a number with a unit")
	// A validation error is placed on its key's line.
	cfg = writeFile(t, dir, "c3.yaml", "# indexer\nindexer:\n  batch_size: 0\n")
	_, out = runBin(t, collectorBin, nil, "validate", "-c", cfg)
	assertHas(t, "batch_size 0", out, cfg+":3: indexer.batch_size: must be at least 1")

	// Sizes take units everywhere, max_line_bytes included.
	sh := writeFile(t, dir, "shipper.yaml", fmt.Sprintf("state: {path: %q}\ninputs:\n  - type: file\n    paths: [/x/*.log]\n    max_line_bytes: 1MiB\n", dir))
	if code, out := runBin(t, shipperBin, nil, "validate", "-c", sh); code != 0 || !strings.Contains(out, "configuration ok") {
		t.Errorf("max_line_bytes: 1MiB: exit %d:\n%s", code, out)
	}
}

// The command line as users of Vector, Fluent Bit and the OTel Collector
// expect it.
func TestCommandLineConventions(t *testing.T) {
	collectorBin, shipperBin := buildBinaries(t)
	dir := t.TempDir()
	cfg := writeFile(t, dir, "collector.yaml", fmt.Sprintf("http: {listen: %q}\nbuffer: {path: %q}\nfile_output: {path: %q}\n",
		freeTCPAddr(t), filepath.Join(dir, "buf"), filepath.Join(dir, "out")))
	for _, bin := range []string{collectorBin, shipperBin} {
		name := filepath.Base(bin)
		code, out := runBin(t, bin, nil, "-h")
		if code != 0 {
			t.Errorf("%s -h: exit %d", name, code)
		}
		assertHas(t, name+" -h", out, "Commands:", "  run ", "  validate ", "  version ", "-c, -config FILE", "-log-format")
		code, out = runBin(t, bin, nil, "--version")
		if code != 0 || !regexp.MustCompile(`^`+name+` \S+ \(commit \S+, go1\.\d+`).MatchString(out) {
			t.Errorf("%s --version: exit %d: %q", name, code, out)
		}
		if code, out = runBin(t, bin, nil, "frobnicate"); code != 2 || !strings.Contains(out, `unknown command "frobnicate"`) {
			t.Errorf("%s frobnicate: exit %d: %s", name, code, out)
		}
		if code, out = runBin(t, bin, nil, "validate"); code != 2 || !strings.Contains(out, "-c FILE is required") {
			t.Errorf("%s validate without -c: exit %d: %s", name, code, out)
		}
	}
	// Each subcommand has its own flags.
	code, out := runBin(t, collectorBin, nil, "trace", "-h")
	if code != 0 || !strings.Contains(out, "-o ") || strings.Contains(out, "-slowest") || !strings.Contains(out, "REQUEST_ID") {
		t.Errorf("collector trace -h: exit %d:\n%s", code, out)
	}
	if code, out = runBin(t, collectorBin, nil, "validate", "-role", "x", "-c", cfg); code != 2 || !strings.Contains(out, "-role") {
		t.Errorf("validate -role: exit %d: %s", code, out)
	}
	// Flags before the subcommand, after it, after positional arguments.
	for _, args := range [][]string{{"-c", cfg, "validate"}, {"validate", "--config", cfg}, {"validate", "-c=" + cfg}} {
		if code, out := runBin(t, collectorBin, nil, args...); code != 0 || !strings.Contains(out, "configuration ok") {
			t.Errorf("%v: exit %d: %s", args, code, out)
		}
	}
	code, out = runBin(t, collectorBin, nil, "trace", "some-request", "-c", cfg, "-o", "json")
	if strings.Contains(out, "usage") || strings.Contains(out, "unexpected argument") {
		t.Errorf("trace ID -c F: flags after the id were refused (exit %d): %s", code, out)
	}
	// No collector wrote there (yet, or the path is relative to another
	// working directory): said, not "no event".
	if code != 1 || !strings.Contains(out, "is not a directory the collector wrote") {
		t.Errorf("trace with no output directory: exit %d: %s", code, out)
	}
	if code, out = runBin(t, collectorBin, nil, "traces", "-c", cfg); code != 1 || !strings.Contains(out, "is not a directory the collector wrote") {
		t.Errorf("traces with no output directory: exit %d: %s", code, out)
	}
	// Stray arguments are errors, not ignored.
	if code, out = runBin(t, collectorBin, nil, "validate", "-c", cfg, "extra"); code != 2 || !strings.Contains(out, `unexpected argument "extra"`) {
		t.Errorf("validate extra: exit %d: %s", code, out)
	}
	if code, out = runBin(t, collectorBin, nil, "trace", "-c", cfg); code != 2 || !strings.Contains(out, "missing REQUEST_ID") {
		t.Errorf("trace without id: exit %d: %s", code, out)
	}
	// -log-format json gives JSON lines; text gives key=value.
	busy, _ := net.Listen("tcp", "127.0.0.1:0")
	defer busy.Close()
	inUse := writeFile(t, dir, "inuse.yaml", fmt.Sprintf("http: {listen: %q}\nbuffer: {path: %q}\nfile_output: {path: %q}\n", busy.Addr(), filepath.Join(dir, "buf"), filepath.Join(dir, "out")))
	_, out = runBin(t, collectorBin, nil, "run", "-c", inUse, "-log-format", "json")
	if !strings.Contains(out, `{"time":`) || !strings.Contains(out, `"level":"ERROR"`) {
		t.Errorf("-log-format json: %s", out)
	}
	_, out = runBin(t, collectorBin, nil, "run", "-c", inUse, "-log-format", "text")
	if !strings.Contains(out, "level=ERROR") {
		t.Errorf("-log-format text: %s", out)
	}
}

// Known secrets, in a configuration's ${VAR}s, literals and URLs, appear
// in no log line, metric or error of validate, run, /metrics and /readyz,
// of either binary.
func TestSecretsAppearNowhere(t *testing.T) {
	collectorBin, shipperBin := buildBinaries(t)
	dir := t.TempDir()
	secrets := map[string]string{"LW_TOKEN": "tok-Zq81secret", "LW_ES_PW": "espw-Xy72secret", "LW_SHIP_PW": "shpw-Wv63secret"}
	env := []string{}
	for k, v := range secrets {
		env = append(env, k+"="+v)
	}
	literal := "lit-Uu54secret"
	var all strings.Builder
	check := func(what, out string) {
		all.WriteString("== " + what + "\n" + out + "\n")
	}
	dead := freeTCPAddr(t)
	addr := freeTCPAddr(t)
	good := fmt.Sprintf(`http:
  listen: %q
  token: ${LW_TOKEN}
elasticsearch:
  urls: ["http://elastic:${LW_ES_PW}@%s"]
  request_timeout: 2s
buffer: {path: %q}
`, addr, dead, filepath.Join(dir, "buf"))
	// Errors next to the secrets: a bad value, an unknown key, a syntax
	// error in the secret's own line, a secret literal in a bad place.
	for name, text := range map[string]string{
		"value":   good + "indexer: {batch_size: many}\n",
		"unknown": strings.Replace(good, "  token: ${LW_TOKEN}\n", "  token: ${LW_TOKEN}\n  tokn: "+literal+"\n", 1),
		"syntax":  strings.Replace(good, "  token: ${LW_TOKEN}\n", "  token: \""+literal+"\n", 1),
		"url":     strings.Replace(good, `urls: ["http://`, `urls: ["ftp://`, 1),
		"shape":   strings.Replace(good, "  token: ${LW_TOKEN}\n", "  token: [${LW_TOKEN}]\n", 1),
	} {
		cfg := writeFile(t, dir, "bad-"+name+".yaml", text)
		code, out := runBin(t, collectorBin, env, "validate", "-c", cfg)
		if code == 0 {
			t.Errorf("%s: validate passed:\n%s", name, out)
		}
		check("validate "+name, out)
	}

	// A collector that runs, refused by its Elasticsearch.
	cfg := writeFile(t, dir, "collector.yaml", good)
	logPath := filepath.Join(dir, "collector.log")
	p := spawnWithEnv(t, logPath, env, collectorBin, "run", "-c", cfg, "-log-level", "debug")
	eventually(t, 10*time.Second, "collector up", func() bool { return get(t, "http://"+addr+"/healthz", "") != "" })
	metrics := get(t, "http://"+addr+"/metrics", secrets["LW_TOKEN"])
	check("/metrics", metrics)
	// Without a GELF input, no machine-wide kernel counter posing as its own.
	if !strings.Contains(metrics, "logweave_buffer_bytes") || strings.Contains(metrics, "logweave_gelf_udp_rcvbuf_errors_total") {
		t.Errorf("collector without GELF: /metrics has logweave_gelf_udp_rcvbuf_errors_total (or is not the metrics):\n%.2000s", metrics)
	}
	check("/readyz", get(t, "http://"+addr+"/readyz", ""))

	// A shipper whose collectors (with passwords in their URLs) refuse it
	// until its breaker opens.
	logs := filepath.Join(dir, "logs")
	os.MkdirAll(logs, 0o755)
	os.WriteFile(filepath.Join(logs, "a.log"), []byte("{\"msg\":\"hello\"}\n"), 0o644)
	shAddr := freeTCPAddr(t)
	sh := writeFile(t, dir, "shipper.yaml", fmt.Sprintf(`collector:
  urls: ["http://u:${LW_SHIP_PW}@%s", "http://u:${LW_SHIP_PW}@%s"]
  token: ${LW_TOKEN}
  retry_max: 100ms
  breaker_failures: 1
http: {listen: %q}
state: {path: %q}
inputs: [{type: file, paths: [%q]}]
`, dead, freeTCPAddr(t), shAddr, filepath.Join(dir, "state"), filepath.Join(logs, "*.log")))
	shLog := filepath.Join(dir, "shipper.log")
	sp := spawnWithEnv(t, shLog, env, shipperBin, "run", "-c", sh, "-log-level", "debug")
	eventually(t, 15*time.Second, "shipper breaker opened", func() bool {
		return strings.Contains(get(t, "http://"+shAddr+"/metrics", ""), "logweave_shipper_breaker_opened_total{")
	})
	check("shipper /metrics", get(t, "http://"+shAddr+"/metrics", ""))
	check("shipper /readyz", get(t, "http://"+shAddr+"/readyz", ""))
	sp.term()
	p.term()
	for _, f := range []string{logPath, shLog} {
		b, _ := os.ReadFile(f)
		check(f, string(b))
	}
	if !strings.Contains(all.String(), "xxxxx@") {
		t.Errorf("no redacted URL was shown at all; the test does not exercise what it should:\n%s", all.String())
	}
	for _, s := range append([]string{literal}, secrets["LW_TOKEN"], secrets["LW_ES_PW"], secrets["LW_SHIP_PW"]) {
		if i := strings.Index(all.String(), s); i >= 0 {
			from := max(0, i-300)
			t.Errorf("secret %q shown:\n%s", s, all.String()[from:min(len(all.String()), i+100)])
		}
	}
}

func spawnWithEnv(t *testing.T, logPath string, env []string, bin string, args ...string) *process {
	t.Helper()
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	return spawn(t, logPath, bin, args...)
}

// get is the body of a GET (with a bearer token when given), "" on error.
func get(t testing.TB, url, token string) string {
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.Status + "\n" + string(b)
}

// Everything the collector and the shipper write (buffer segments and
// cursor, output files, checkpoints) is readable by their user only:
// files 0600, directories 0700.
func TestFilesWrittenAreOwnerOnly(t *testing.T) {
	dir := t.TempDir()
	c := startCollector(t, dir, "")
	defer stopCollector(t, c)
	logs := filepath.Join(dir, "logs")
	os.MkdirAll(logs, 0o755)
	os.WriteFile(filepath.Join(logs, "a.log"), []byte("{\"msg\":\"one\",\"request_id\":\"r1\"}\nplain two\n"), 0o644)
	s := startShipper(t, dir, c.Addr(), filepath.Join(logs, "*.log"))
	eventually(t, 15*time.Second, "both lines acked", func() bool { return s.Acked() >= 2 })
	s.stop(t)
	seen := map[string]int{}
	for _, root := range []string{"buffer", "out", "shipper-state"} {
		filepath.Walk(filepath.Join(dir, root), func(p string, fi os.FileInfo, err error) error {
			if err != nil {
				t.Error(err)
				return nil
			}
			want := os.FileMode(0o600)
			if fi.IsDir() {
				want = 0o700
			}
			if fi.Mode().Perm() != want {
				t.Errorf("%s: mode %v, want %v", p, fi.Mode().Perm(), want)
			}
			seen[root]++
			return nil
		})
	}
	if seen["buffer"] < 3 || seen["out"] < 2 || seen["shipper-state"] < 2 {
		t.Errorf("too few files to judge: %v", seen)
	}
}

// Both binaries say every summary_interval what they did: the shipper
// lines read, sent and acknowledged, the collector events received and
// delivered.
func TestPeriodicSummaryLines(t *testing.T) {
	collectorBin, shipperBin := buildBinaries(t)
	dir := t.TempDir()
	addr := freeTCPAddr(t)
	col := writeFile(t, dir, "collector.yaml", fmt.Sprintf("http: {listen: %q}\nbuffer: {path: %q}\nfile_output: {path: %q}\nsummary_interval: 1s\n",
		addr, filepath.Join(dir, "buf"), filepath.Join(dir, "out")))
	colLog := filepath.Join(dir, "collector.log")
	cp := spawn(t, colLog, collectorBin, "run", "-c", col, "-log-format", "json")
	eventually(t, 10*time.Second, "collector up", func() bool { return get(t, "http://"+addr+"/healthz", "") != "" })
	logs := filepath.Join(dir, "logs")
	os.MkdirAll(logs, 0o755)
	var lines strings.Builder
	for i := 0; i < 50; i++ {
		fmt.Fprintf(&lines, "{\"msg\":\"line %d\"}\n", i)
	}
	os.WriteFile(filepath.Join(logs, "a.log"), []byte(lines.String()), 0o644)
	sh := writeFile(t, dir, "shipper.yaml", fmt.Sprintf("collector: {urls: [\"http://%s\"], linger: 10ms}\nstate: {path: %q}\nsummary_interval: 1s\ninputs: [{type: file, paths: [%q]}]\n",
		addr, filepath.Join(dir, "state"), filepath.Join(logs, "*.log")))
	shLog := filepath.Join(dir, "shipper.log")
	sp := spawn(t, shLog, shipperBin, "run", "-c", sh, "-log-format", "json")
	summed := func(path, key string) int64 {
		b, _ := os.ReadFile(path)
		var total int64
		for _, l := range strings.Split(string(b), "\n") {
			if gjson.Get(l, "msg").String() == "summary" {
				total += gjson.Get(l, key).Int()
			}
		}
		return total
	}
	eventually(t, 20*time.Second, "summaries counting all 50 lines", func() bool {
		return summed(shLog, "lines_read") == 50 && summed(shLog, "acked") == 50 &&
			summed(colLog, "received") == 50 && summed(colLog, "delivered") == 50
	})
	if t.Failed() {
		b1, _ := os.ReadFile(shLog)
		b2, _ := os.ReadFile(colLog)
		t.Logf("shipper:\n%s\ncollector:\n%s", b1, b2)
	}
	sp.term()
	cp.term()
}
