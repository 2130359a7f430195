package collector_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/logweave/logweave/collector"
	"github.com/logweave/logweave/pipeline"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestConfigValidation(t *testing.T) {
	cases := map[string]string{
		"http: {listen: nonsense}":                           "http.listen",
		"buffer: {path: ''}":                                 "buffer.path",
		"buffer: {segment_bytes: 1MiB, max_bytes: 1MiB}":     "buffer.max_bytes",
		"elasticsearch: {urls: ['localhost:9200']}":          "elasticsearch.urls[0]",
		"elasticsearch: {index: 'logs-%{+yyyy.QQ}'}":         "elasticsearch.index",
		"elasticsearch: {api_key: k, username: u}":           "api_key",
		"elasticsearch: {workers: 0}":                        "elasticsearch.workers",
		"file_output: {path: ''}":                            "file_output.path",
		"correlation: {request_id_fields: []}":               "correlation.request_id_fields",
		"indexer: {batch_size: 0}":                           "indexer.batch_size",
		"indexer: {batch_size: ten}":                         "batch_size",
		"elasticsearch: {retry_initial: 10s, retry_max: 1s}": "retry_initial",
		"elastic: {urls: []}":                                "line 1: elastic: unknown key",
		"elasticsearch: {traces_index: 'req-%{+yyyy.MM}'}":   "set correlation.traces_index",
	}
	for in, want := range cases {
		err := pipeline.ParseConfig([]byte(in), collector.DefaultConfig())
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want an error mentioning %q", in, err, want)
		}
	}
	for _, ok := range []string{"", "elasticsearch: {traces_index: 'traces-%{+yyyy.MM.dd}'}",
		"elasticsearch: {traces_index: 'req-%{+yyyy.MM}'}\ncorrelation: {traces_index: 'req-%{+yyyy.MM}'}"} {
		if err := pipeline.ParseConfig([]byte(ok), collector.DefaultConfig()); err != nil {
			t.Fatalf("%q: %v", ok, err)
		}
	}
}

func start(t *testing.T, cfg *collector.Config) (*collector.Collector, string) {
	t.Helper()
	c, err := collector.New(cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	c.DrainTimeout = 100 * time.Millisecond
	c.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c.Shutdown(ctx)
	})
	return c, "http://" + c.Addr()
}

func testConfig(t *testing.T) *collector.Config {
	dir := t.TempDir()
	cfg := collector.DefaultConfig()
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.Buffer.Path = filepath.Join(dir, "buffer")
	cfg.FileOutput.Path = filepath.Join(dir, "out")
	return cfg
}

func TestHealthReadyMetrics(t *testing.T) {
	c, base := start(t, testConfig(t))
	resp, err := http.Post(base+"/v1/events", "application/x-ndjson", strings.NewReader(`{"msg":"hello","level":"info"}`+"\nplain\n"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("ingest: %s", resp.Status)
	}
	deadline := time.Now().Add(5 * time.Second)
	for c.Indexed() < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	for path, want := range map[string]string{
		"/healthz": "ok",
		"/readyz":  "ready",
		"/metrics": "logweave_events_received_total",
	} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Errorf("%s: %s %.200s", path, resp.Status, body)
		}
	}
	resp, _ = http.Get(base + "/metrics")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range []string{"logweave_buffer_bytes", "logweave_buffer_pending_bytes", "logweave_events_parse_failures_total", `logweave_ingest_requests_total{code="200"}`} {
		if !strings.Contains(string(body), m) {
			t.Errorf("metric %s missing", m)
		}
	}
}

// A full buffer turns into 429 + Retry-After for the sender, and /readyz
// says so; once the indexer drains it, ingest accepts again.
func TestFullBufferAnswers429(t *testing.T) {
	cfg := testConfig(t)
	cfg.Buffer.SegmentBytes = 4096
	cfg.Buffer.MaxBytes = 8192
	cfg.Elasticsearch.URLs = []string{"http://127.0.0.1:1"} // unreachable: nothing drains
	cfg.Elasticsearch.RetryInitial = 10 * time.Millisecond
	cfg.Elasticsearch.RetryMax = 20 * time.Millisecond
	_, base := start(t, cfg)
	line := `{"msg":"` + strings.Repeat("x", 500) + `"}` + "\n"
	got429 := false
	for i := 0; i < 100 && !got429; i++ {
		resp, err := http.Post(base+"/v1/events", "application/x-ndjson", strings.NewReader(line))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests {
			got429 = true
			if resp.Header.Get("Retry-After") == "" {
				t.Fatal("429 without Retry-After")
			}
		} else if resp.StatusCode != 200 {
			t.Fatalf("status %s", resp.Status)
		}
	}
	if !got429 {
		t.Fatal("buffer never reported full")
	}
	resp, _ := http.Get(base + "/readyz")
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with a full buffer: %s", resp.Status)
	}
}

// A batch bigger than the whole buffer could ever hold gets 413 (send
// smaller batches), not 429 forever; the buffer stays usable.
func TestBatchLargerThanTheBufferAnswers413(t *testing.T) {
	cfg := testConfig(t)
	cfg.Buffer.SegmentBytes = 4096
	cfg.Buffer.MaxBytes = 8192
	_, base := start(t, cfg)
	big := strings.Repeat(`{"msg":"`+strings.Repeat("x", 500)+`"}`+"\n", 40) // ~20 KB
	resp, err := http.Post(base+"/v1/events", "application/x-ndjson", strings.NewReader(big))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(body), "max_bytes") {
		t.Fatalf("a batch larger than buffer.max_bytes: %s %s", resp.Status, body)
	}
	resp, err = http.Post(base+"/v1/events", "application/x-ndjson", strings.NewReader(`{"msg":"small"}`+"\n"))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("a small batch after it: %v %v", resp, err)
	}
	resp.Body.Close()
}

// While Elasticsearch is away the circuit breaker opens, but a collector
// that ingests stays ready (its buffer takes the events), so Kubernetes
// keeps it behind its Service; /readyz says why it is degraded.
func TestReadyWhileBreakerOpenAndBufferHasRoom(t *testing.T) {
	cfg := testConfig(t)
	cfg.Elasticsearch.URLs = []string{"http://127.0.0.1:1"} // unreachable
	cfg.Elasticsearch.RetryInitial = 5 * time.Millisecond
	cfg.Elasticsearch.RetryMax = 10 * time.Millisecond
	cfg.Elasticsearch.BreakerFailures = 1
	cfg.Elasticsearch.BreakerCooldown = time.Minute
	_, base := start(t, cfg)
	resp, err := http.Post(base+"/v1/events", "application/x-ndjson", strings.NewReader(`{"msg":"waits"}`+"\n"))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("ingest: %v %v", resp, err)
	}
	resp.Body.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("/readyz: %s %s", resp.Status, body)
		}
		if strings.Contains(string(body), "circuit breaker open") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("breaker never reported open: %s", body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestShutdownWithoutStart(t *testing.T) {
	c, err := collector.New(testConfig(t), quiet)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// A start failure returns its error (it panicked in the clean-up before):
// here the port is taken; what was opened before is closed.
func TestStartFailureSaysWhy(t *testing.T) {
	first, _ := start(t, testConfig(t))
	cfg := testConfig(t)
	cfg.HTTP.Listen = first.Addr()
	c, err := collector.New(cfg, quiet)
	if err == nil || c != nil || !strings.Contains(err.Error(), "http.listen") {
		t.Fatalf("got %v, %v; want the http.listen error", c, err)
	}
	// The buffer it opened was closed: it opens again.
	cfg.HTTP.Listen = "127.0.0.1:0"
	again, err := collector.New(cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	again.Shutdown(context.Background())
}

// privacy: present turns redaction on with its defaults; a pseudonym key
// from the environment, one or a list; validation names what is wrong.
func TestPrivacyConfig(t *testing.T) {
	key := strings.Repeat("k", 32)
	env := func(k string) (string, bool) {
		if k == "LOGWEAVE_PSEUDONYM_KEY" {
			return key, true
		}
		return "", false
	}
	for in, want := range map[string]string{
		"privacy: {fields: [{paths: [user.id], action: pseudonymize}]}":             "privacy.key: pseudonymize needs a key",
		"privacy: {key: short, fields: [{paths: [user.id], action: pseudonymize}]}": "privacy.key[0]: 5 bytes",
		"privacy: {detect: {kinds: [phone]}}":                                       "privacy.detect.kinds",
		"privacy: {detect: {action: hash}}":                                         "privacy.detect.action",
		"privacy: {fields: [{paths: [a], action: encrypt}]}":                        "privacy.fields[0].action",
		"privacy: {detect: {kind: [email]}}":                                        `unknown field "kind"`,
	} {
		err := pipeline.ParseConfigEnv([]byte(in), collector.DefaultConfig(), env)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want an error mentioning %q", in, err, want)
		}
	}
	c := collector.DefaultConfig()
	if err := pipeline.ParseConfigEnv([]byte("privacy: {}"), c, env); err != nil || c.Privacy == nil ||
		c.Privacy.Detect.Action != "mask" || c.Privacy.Detect.Kinds != nil || len(c.Privacy.Detect.AllowFields) != 4 {
		t.Fatalf("privacy: {} → %v %+v", err, c.Privacy)
	}
	c = collector.DefaultConfig()
	yml := "privacy:\n  key: [\"${LOGWEAVE_PSEUDONYM_KEY}\", " + strings.Repeat("o", 40) + "]\n  fields:\n    - {paths: [user.id], action: pseudonymize}\n  detect: {kinds: []}\n"
	if err := pipeline.ParseConfigEnv([]byte(yml), c, env); err != nil || len(c.Privacy.Key) != 2 || c.Privacy.Key[0] != key ||
		c.Privacy.Detect.Kinds == nil || len(c.Privacy.Detect.Kinds) != 0 {
		t.Fatalf("%s→ %v %+v", yml, err, c.Privacy)
	}
	if c := collector.DefaultConfig(); pipeline.ParseConfigEnv(nil, c, env) != nil || c.Privacy != nil {
		t.Fatal("privacy on by default")
	}
}
