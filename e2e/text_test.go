package e2e

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/logweave/logweave/collector"
	"github.com/logweave/logweave/inputs/tail"
	"github.com/logweave/logweave/internal/estest"
	"github.com/logweave/logweave/internal/kubetest"
	"github.com/logweave/logweave/shipper"
)

// The end-to-end mix (5% of its lines are text like `2024-05-01
// 12:00:00.278 WARN [gateway] connection pool exhausted ...
// request_id=... thread=...`) through the shipper and the collector with
// their defaults: every request's trace counts its text lines too, exactly,
// and each text line is in the daily index of its own timestamp, with its
// level and logger.
func TestTextLinesJoinTheirTraces(t *testing.T) {
	dir := t.TempDir()
	es := estest.New()
	defer es.Close()
	col := startCollector(t, dir, es.URL, func(c *collector.Config) { c.Correlation.Window = 500 * time.Millisecond })
	defer stopCollector(t, col)
	file := filepath.Join(dir, "logs", "app.log")
	const n = 20_000
	costCorpus(t, file, n, 7)

	// What each request has in the file, and each text line's time.
	want := map[string]int{}
	textAt := map[string]string{} // request_id + message head → its time, as written
	jsonID := regexp.MustCompile(`"request_id":"([0-9a-f]+)"`)
	textRe := regexp.MustCompile(`^(\S+ \S+) WARN  \[(\w+)\] (.*) request_id=([0-9a-f]+) `)
	f, _ := os.Open(file)
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	texts := 0
	for sc.Scan() {
		l := sc.Text()
		if m := jsonID.FindStringSubmatch(l); m != nil {
			want[m[1]]++
		} else if m := textRe.FindStringSubmatch(l); m != nil {
			want[m[4]]++
			texts++
			at, _ := time.Parse("2006-01-02 15:04:05.000", m[1])
			textAt[m[4]+"|"+m[3]] = at.UTC().Format("2006-01-02T15:04:05.000Z")
		} else {
			t.Fatalf("corpus line of neither kind: %q", l)
		}
	}
	f.Close()
	if texts < n/40 {
		t.Fatalf("only %d text lines", texts)
	}

	sh := startShipper(t, dir, col.Addr(), file)
	defer sh.stop(t)
	eventually(t, 120*time.Second, "every line indexed", func() bool { return es.Count("logs-*") >= n })
	eventually(t, 60*time.Second, "every request's trace", func() bool { return es.Count("traces-*") >= len(want) })
	time.Sleep(time.Second)

	seenText := 0
	for _, idx := range es.IndicesMatching("logs-*") {
		for _, d := range es.Docs(idx) {
			if gjson.GetBytes(d, "log.level").String() != "warn" || !gjson.GetBytes(d, "thread").Exists() {
				continue
			}
			seenText++
			id, msg := gjson.GetBytes(d, "request_id").String(), gjson.GetBytes(d, "message").String()
			head, _, _ := strings.Cut(msg, " request_id=")
			at := textAt[id+"|"+head]
			ts := gjson.GetBytes(d, "@timestamp").String()
			if at == "" || ts != at || idx != "logs-"+strings.ReplaceAll(at[:10], "-", ".") ||
				gjson.GetBytes(d, "trace.id").String() != id || gjson.GetBytes(d, "log.logger").String() == "" ||
				gjson.GetBytes(d, "tags").Exists() {
				t.Fatalf("text line in %s not read (want time %q): %s", idx, at, d)
			}
		}
	}
	if seenText != texts {
		t.Fatalf("%d text lines read, want %d", seenText, texts)
	}
	exact := 0
	for _, idx := range es.IndicesMatching("traces-*") {
		for _, d := range es.Docs(idx) {
			id := gjson.GetBytes(d, "trace.id").String()
			if got := gjson.GetBytes(d, "event_count").Int(); got != int64(want[id]) {
				t.Errorf("trace %s: %d events, the file has %d", id, got, want[id])
				continue
			}
			exact++
		}
	}
	if exact != len(want) {
		t.Fatalf("%d of %d traces exact", exact, len(want))
	}
}

// Java, Python and Go stack traces in a file, through the shipper (preset
// auto) and the collector: each arrives as one event, flagged multiline,
// its head read (time, level, logger) like any text line.
func TestStackTracesArriveAsOneEvent(t *testing.T) {
	dir := t.TempDir()
	es := estest.New()
	defer es.Close()
	col := startCollector(t, dir, es.URL)
	defer stopCollector(t, col)
	data, err := os.ReadFile("../inputs/tail/testdata/multiline_mix.log")
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(dir, "logs"), 0o755)
	file := filepath.Join(dir, "logs", "app.log")
	os.WriteFile(file, data, 0o644)
	cfg := shipper.DefaultConfig()
	cfg.Collector.URLs = []string{"http://" + col.Addr()}
	cfg.Collector.Linger = 20 * time.Millisecond
	cfg.State.Path = filepath.Join(dir, "state")
	in := shipper.InputConfig{Type: "file", Config: defaultTail()}
	in.Paths = []string{file}
	in.ScanInterval, in.PollInterval = 50*time.Millisecond, 20*time.Millisecond
	in.Multiline = tail.MultilineConfig{Preset: tail.PresetAuto, Timeout: 300 * time.Millisecond}
	cfg.Inputs = []shipper.InputConfig{in}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	sh := runShipperConfig(t, cfg)
	defer sh.stop(t)
	const records = 8
	eventually(t, 30*time.Second, "the records indexed", func() bool { return es.Count("logs-*") >= records })
	time.Sleep(time.Second)
	if n := es.Count("logs-*"); n != records {
		t.Fatalf("%d events, want %d records", n, records)
	}
	multi := 0
	for _, idx := range es.IndicesMatching("logs-*") {
		for _, d := range es.Docs(idx) {
			msg := gjson.GetBytes(d, "message").String()
			if !strings.Contains(msg, "\n") {
				continue
			}
			multi++
			if gjson.GetBytes(d, "log.flags").Raw != `["multiline"]` {
				t.Fatalf("not flagged: %s", d)
			}
			if strings.HasPrefix(msg, "charge failed\njava.lang.IllegalStateException") {
				if gjson.GetBytes(d, "log.level").String() != "error" || gjson.GetBytes(d, "log.logger").String() != "pay" ||
					gjson.GetBytes(d, "@timestamp").String() != "2026-11-26T10:00:01.002Z" || !strings.HasSuffix(msg, "\t... 42 more") {
					t.Fatalf("java record: %s", d)
				}
			}
		}
	}
	if multi != 3 {
		t.Fatalf("%d multiline events, want 3 (java, python, go)", multi)
	}
}

// On a Kubernetes node, a pod annotated `logweave.io/multiline: java` has
// its stack traces joined, read from the API server (a stand-in, over TLS
// with the service account's token and CA); a pod without the annotation
// keeps the input's setting (off here), its frames apart. CRI lines, as
// containerd writes them in /var/log/pods.
func TestMultilinePresetByPodAnnotation(t *testing.T) {
	dir := t.TempDir()
	es := estest.New()
	defer es.Close()
	col := startCollector(t, dir, es.URL)
	defer stopCollector(t, col)
	api := kubetest.New(t, map[string]string{
		"shop/pay-7d9": `{"metadata":{"name":"pay-7d9","namespace":"shop","uid":"u-pay","annotations":{"logweave.io/multiline":"java"}}}`,
		"shop/web-5f1": `{"metadata":{"name":"web-5f1","namespace":"shop","uid":"u-web"}}`,
	})
	trace := []string{
		"2026-11-26 10:00:01.002 ERROR [pay] charge failed",
		"java.lang.IllegalStateException: card processor timeout",
		"\tat com.example.Pay.charge(Pay.java:88)",
		"\tat com.example.Api.post(Api.java:12)",
		"Caused by: java.net.SocketTimeoutException: Read timed out",
		"\tat java.base/java.net.Socket.read(Socket.java:1)",
		"\t... 42 more",
		"2026-11-26 10:00:02.003 INFO [main] retrying",
	}
	var cri strings.Builder
	for i, l := range trace {
		fmt.Fprintf(&cri, "2026-11-26T10:00:0%d.%09dZ stdout F %s\n", 1+i/7, i, l)
	}
	for _, pod := range []string{"shop_pay-7d9_u-pay", "shop_web-5f1_u-web"} {
		d := filepath.Join(dir, "var/log/pods", pod, "app")
		os.MkdirAll(d, 0o755)
		os.WriteFile(filepath.Join(d, "0.log"), []byte(cri.String()), 0o644)
	}
	cfg := shipper.DefaultConfig()
	cfg.Collector.URLs = []string{"http://" + col.Addr()}
	cfg.Collector.Linger = 20 * time.Millisecond
	cfg.State.Path = filepath.Join(dir, "state")
	cfg.Kubernetes.Annotations, cfg.Kubernetes.URL = true, api.URL
	cfg.Kubernetes.CAFile, cfg.Kubernetes.TokenFile = api.CAFile, api.TokenFile
	in := shipper.InputConfig{Type: "file", Config: defaultTail()}
	in.Paths = []string{filepath.Join(dir, "var/log/pods/*/*/*.log")}
	in.Format = tail.FormatAuto
	in.ScanInterval, in.PollInterval = 50*time.Millisecond, 20*time.Millisecond
	in.Multiline.Timeout = 300 * time.Millisecond
	cfg.Inputs = []shipper.InputConfig{in}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	sh := runShipperConfig(t, cfg)
	defer sh.stop(t)
	want := 2 + len(trace) // pay: the trace and the next line; web: every line
	eventually(t, 30*time.Second, "the events indexed", func() bool { return es.Count("logs-*") >= want })
	time.Sleep(time.Second)
	if n := es.Count("logs-*"); n != want {
		t.Fatalf("%d events, want %d", n, want)
	}
	perPod := map[string]int{}
	for _, idx := range es.IndicesMatching("logs-*") {
		for _, d := range es.Docs(idx) {
			pod := gjson.GetBytes(d, "kubernetes.pod.name").String()
			perPod[pod]++
			msg := gjson.GetBytes(d, "message").String()
			if pod == "pay-7d9" && strings.HasPrefix(msg, "charge failed\n") {
				if !strings.HasSuffix(msg, "\t... 42 more") || gjson.GetBytes(d, "log.flags").Raw != `["multiline"]` ||
					gjson.GetBytes(d, "log.level").String() != "error" {
					t.Fatalf("pay's record: %s", d)
				}
			}
			if pod == "web-5f1" && strings.Contains(msg, "\n") {
				t.Fatalf("web (no annotation) joined lines: %s", d)
			}
		}
	}
	if perPod["pay-7d9"] != 2 || perPod["web-5f1"] != len(trace) {
		t.Fatalf("events per pod: %v", perPod)
	}
	if api.Gets.Load() != 2 {
		t.Fatalf("%d API requests, want one per pod", api.Gets.Load())
	}
}
