package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	lumber "github.com/elastic/go-lumber/client/v2"
	"github.com/vmihailenco/msgpack/v5"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
)

// TestInputCost runs the collector binary once per network input, with its
// defaults (disk buffer, file output, traces on), and sends it the lines of
// the end-to-end corpus through that input's protocol from this process,
// in batches of 1000 (Forward chunks and Beats windows acknowledged, OTLP
// requests answered, syslog and GELF over TCP). It prints the collector's
// CPU-seconds per million events, events per second per core (events /
// CPU-seconds), its peak RSS and the events per second as sent. The senders'
// CPU is not counted: the figure is what the collector spends on each
// protocol, decoding, mapping, filters, buffer, traces and output included.
//
// `make test` runs it on 20,000 events per input; `make bench-e2e` on
// LOGWEAVE_BENCH_EVENTS (200,000 there).
func TestInputCost(t *testing.T) {
	n := 20_000
	if s := os.Getenv("LOGWEAVE_BENCH_EVENTS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 1000 {
			t.Fatalf("LOGWEAVE_BENCH_EVENTS=%q (at least 1000)", s)
		}
	}
	collectorBin, _ := buildBinaries(t)
	dir := t.TempDir()
	costCorpus(t, filepath.Join(dir, "corpus.log"), n, 1)
	data, _ := os.ReadFile(filepath.Join(dir, "corpus.log"))
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")

	type result struct {
		input string
		u     usage
		wall  time.Duration
	}
	var results []result
	for _, in := range []struct {
		name string
		cfg  func(addr string) string
		send func(t *testing.T, addr string, lines []string)
	}{
		{"forward (acks)", func(a string) string { return fmt.Sprintf("forward: {listen: %q}\n", a) }, sendForward},
		{"beats (lumberjack v2)", func(a string) string { return fmt.Sprintf("beats: {listen: %q}\n", a) }, sendBeats},
		{"otlp (http, protobuf)", func(a string) string { return fmt.Sprintf("otlp: {http_listen: %q}\n", a) }, sendOTLP},
		{"syslog (tcp, rfc5424)", func(a string) string { return fmt.Sprintf("syslog: {listen: %q}\n", a) }, sendSyslog},
		{"gelf (tcp)", func(a string) string { return fmt.Sprintf("gelf: {listen: %q}\n", a) }, sendGELF},
	} {
		vdir := filepath.Join(dir, strconv.Itoa(len(results)))
		os.MkdirAll(vdir, 0o755)
		addr, inAddr := freeTCPAddr(t), freeTCPAddr(t)
		cfg := fmt.Sprintf("http: {listen: %q}\nbuffer: {path: %q}\nfile_output: {path: %q}\n", addr, filepath.Join(vdir, "buf"), filepath.Join(vdir, "out")) + in.cfg(inAddr)
		col := spawnCollector(t, filepath.Join(vdir, "collector.log"), collectorBin, writeFile(t, vdir, "collector.yaml", cfg), addr)
		start := time.Now()
		in.send(t, inAddr, lines)
		deadline := start.Add(10 * time.Minute)
		for delivered(addr) < int64(n) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d of %d events delivered after 10 minutes", in.name, delivered(addr), n)
			}
			time.Sleep(100 * time.Millisecond)
		}
		wall := time.Since(start)
		col.term()
		if got := countLines(t, filepath.Join(vdir, "out", "logs-*.ndjson")); got != n {
			t.Errorf("%s: %d events in the output, want %d", in.name, got, n)
		}
		results = append(results, result{in.name, col.usage("collector"), wall})
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\ncollector cost per input: %d events of the end-to-end corpus, batches of 1000, defaults (disk buffer, file output, traces)\n", n)
	fmt.Fprintf(&b, "%-24s %15s %16s %10s %10s\n", "input", "CPU-s/1M events", "events/s/core", "peak RSS", "events/s")
	for _, r := range results {
		fmt.Fprintf(&b, "%-24s %15.2f %16.0f %6d MiB %10.0f\n", r.input, r.u.cpu.Seconds()/float64(n)*1e6, float64(n)/r.u.cpu.Seconds(), r.u.peakKiB/1024, float64(n)/r.wall.Seconds())
	}
	fmt.Print(b.String())
	t.Log(b.String())
}

func sendForward(t *testing.T, addr string, lines []string) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dec := msgpack.NewDecoder(bufio.NewReader(c))
	now := time.Now().Unix()
	for i := 0; i < len(lines); i += 1000 {
		batch := lines[i:min(i+1000, len(lines))]
		entries := make([]any, len(batch))
		for k, l := range batch {
			entries[k] = []any{now, map[string]any{"log": l, "source": "stdout"}}
		}
		chunk := "c" + strconv.Itoa(i)
		msg, _ := msgpack.Marshal([]any{"app", entries, map[string]any{"chunk": chunk}})
		var ack map[string]string
		if _, err := c.Write(msg); err != nil || dec.Decode(&ack) != nil || ack["ack"] != chunk {
			t.Fatalf("forward chunk %s not acknowledged: %v %v", chunk, err, ack)
		}
	}
}

func sendBeats(t *testing.T, addr string, lines []string) {
	c, err := lumber.SyncDial(addr, lumber.Timeout(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ts := time.Now().UTC().Format(time.RFC3339Nano)
	for i := 0; i < len(lines); i += 1000 {
		batch := lines[i:min(i+1000, len(lines))]
		events := make([]any, len(batch))
		for k, l := range batch {
			events[k] = map[string]any{"@timestamp": ts, "message": l}
		}
		if n, err := c.Send(events); err != nil || n != len(events) {
			t.Fatalf("beats window: %d of %d acknowledged: %v", n, len(events), err)
		}
	}
}

func sendOTLP(t *testing.T, addr string, lines []string) {
	for i := 0; i < len(lines); i += 1000 {
		ld := plog.NewLogs()
		rl := ld.ResourceLogs().AppendEmpty()
		rl.Resource().Attributes().PutStr("service.name", "bench")
		lrs := rl.ScopeLogs().AppendEmpty().LogRecords()
		for _, l := range lines[i:min(i+1000, len(lines))] {
			lrs.AppendEmpty().Body().SetStr(l)
		}
		body, _ := plogotlp.NewExportRequestFromLogs(ld).MarshalProto()
		resp, err := http.Post("http://"+addr+"/v1/logs", "application/x-protobuf", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("otlp: %s", resp.Status)
		}
	}
}

func sendSyslog(t *testing.T, addr string, lines []string) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	w := bufio.NewWriterSize(c, 1<<20)
	ts := time.Now().UTC().Format(time.RFC3339Nano)
	for _, l := range lines {
		fmt.Fprintf(w, "<134>1 %s node-1 app 42 - - %s\n", ts, l)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
}

func sendGELF(t *testing.T, addr string, lines []string) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	w := bufio.NewWriterSize(c, 1<<20)
	for _, l := range lines {
		msg, _ := json.Marshal(map[string]any{"version": "1.1", "host": "node-1", "short_message": l, "_container_name": "app"})
		w.Write(msg)
		w.WriteByte(0)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
}
