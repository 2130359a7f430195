package tail_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/logweave/logweave/inputs/tail"
)

func startFormat(t *testing.T, glob, format string) *harness {
	cfg := tail.DefaultConfig()
	cfg.Paths = []string{glob}
	cfg.ScanInterval = 20 * time.Millisecond
	cfg.PollInterval = 10 * time.Millisecond
	cfg.Format = format
	if err := cfg.Validate("inputs[0]"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{t: t, lines: make(chan tail.Line, 1000), cancel: cancel, done: make(chan struct{})}
	go func() { tail.New(cfg, nil, quiet).Run(ctx, h.lines); close(h.done) }()
	t.Cleanup(func() { cancel(); <-h.done })
	return h
}

func dockerLine(text, stream string, ts time.Time) string {
	b, _ := json.Marshal(map[string]string{"log": text, "stream": stream, "time": ts.Format(time.RFC3339Nano)})
	return string(b) + "\n"
}

// Docker's json-file driver: lines unwrapped, the runtime's time and
// stream kept, a line split at 16 KiB joined again.
func TestDockerFormatJoinsSplitLines(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c-json.log")
	ts := time.Date(2026, 11, 26, 10, 0, 0, 123456789, time.UTC)
	long := strings.Repeat("x", 40000)
	var content string
	content += dockerLine(`{"msg":"first"}`+"\n", "stdout", ts)
	for i := 0; i < len(long); i += 16384 {
		part := long[i:min(i+16384, len(long))]
		if i+16384 >= len(long) {
			part += "\n"
		}
		content += dockerLine(part, "stderr", ts.Add(time.Millisecond))
	}
	content += dockerLine("last\r\n", "stdout", ts.Add(2*time.Millisecond))
	content += "not docker json at all\n"
	appendTo(t, p, content)
	h := startFormat(t, p, tail.FormatDocker)
	got := h.next(4)
	if string(got[0].Data) != `{"msg":"first"}` || got[0].Stream != "stdout" || !got[0].Time.Equal(ts) || got[0].Offset != 0 {
		t.Fatalf("first: %+v", got[0])
	}
	if string(got[1].Data) != long || got[1].Stream != "stderr" || got[1].Offset != got[0].End {
		t.Fatalf("joined line: %d bytes, offset %d", len(got[1].Data), got[1].Offset)
	}
	if string(got[2].Data) != "last" || got[2].Offset != got[1].End {
		t.Fatalf("last: %+v", got[2])
	}
	if string(got[3].Data) != "not docker json at all" {
		t.Fatalf("raw fallback: %q", got[3].Data)
	}
}

func TestCRIFormatJoinsPartialLines(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "0.log")
	appendTo(t, p, "2026-11-26T10:00:00.000000001Z stdout P hello \n"+
		"2026-11-26T10:00:00.000000002Z stdout P big \n"+
		"2026-11-26T10:00:00.000000003Z stdout F world\n"+
		"2026-11-26T10:00:01Z stderr F {\"level\":\"error\"}\n"+
		"2026-11-26T10:00:02Z stdout F \n")
	h := startFormat(t, p, tail.FormatCRI)
	got := h.next(2)
	if string(got[0].Data) != "hello big world" || got[0].Offset != 0 || got[0].Stream != "stdout" {
		t.Fatalf("joined: %+v", got[0])
	}
	if string(got[1].Data) != `{"level":"error"}` || got[1].Stream != "stderr" || got[1].Time.Second() != 1 {
		t.Fatalf("second: %+v", got[1])
	}
	h.none() // the empty F line is skipped
}

func TestPathFields(t *testing.T) {
	id := strings.Repeat("ab", 32)
	cases := map[string]map[string]string{
		"/var/log/pods/shop_orders-7d9f_0a1b-2c3d/orders/0.log": {
			"kubernetes.namespace": "shop", "kubernetes.pod.name": "orders-7d9f", "kubernetes.pod.uid": "0a1b-2c3d", "kubernetes.container.name": "orders"},
		"/var/log/containers/orders-7d9f_shop_orders-" + id + ".log": {
			"kubernetes.pod.name": "orders-7d9f", "kubernetes.namespace": "shop", "kubernetes.container.name": "orders", "container.id": id},
		"/var/lib/docker/containers/" + id + "/" + id + "-json.log": {"container.id": id},
		"/var/log/app/orders.log":                                   {},
	}
	for path, want := range cases {
		got := tail.PathFields(path)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s:\n got  %v\n want %v", path, got, want)
		}
	}
}

// Docker writes stdout and stderr through separate copiers: a stderr line
// can land between the parts of a split stdout line. Each stream is joined
// on its own, and the interleaved line's checkpoint stays before the
// unfinished line.
func TestDockerFormatInterleavedStreams(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c-json.log")
	ts := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	content := dockerLine(`{"blob":"`+strings.Repeat("a", 100), "stdout", ts) +
		dockerLine("oops on stderr\n", "stderr", ts) +
		dockerLine(strings.Repeat("b", 100), "stdout", ts) +
		dockerLine(`"}`+"\n", "stdout", ts)
	appendTo(t, p, content)
	h := startFormat(t, p, tail.FormatDocker)
	got := h.next(2)
	if string(got[0].Data) != "oops on stderr" || got[0].Stream != "stderr" {
		t.Fatalf("stderr: %+v", got[0])
	}
	if got[0].End != 0 {
		t.Fatalf("stderr line's checkpoint %d passes the start (0) of the unfinished stdout line", got[0].End)
	}
	want := `{"blob":"` + strings.Repeat("a", 100) + strings.Repeat("b", 100) + `"}`
	if string(got[1].Data) != want || got[1].Offset != 0 || got[1].End != int64(len(content)) {
		t.Fatalf("stdout joined wrong: offset %d end %d %q", got[1].Offset, got[1].End, got[1].Data)
	}
}

func TestMultilineJoinsStackTraces(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "app.log")
	first := "2026-11-26 10:00:00 ERROR payment failed\n"
	trace := "java.net.SocketTimeoutException: Read timed out\n\tat com.example.Pay.charge(Pay.java:88)\n\tat com.example.Api.post(Api.java:12)\n"
	second := "2026-11-26 10:00:01 INFO retrying\n"
	appendTo(t, p, "orphan continuation before any start\n"+first+trace+second)
	cfg := tail.DefaultConfig()
	cfg.Paths = []string{p}
	cfg.ScanInterval, cfg.PollInterval = 20*time.Millisecond, 10*time.Millisecond
	cfg.Multiline = tail.MultilineConfig{Pattern: `^\d{4}-\d{2}-\d{2} `, Timeout: 200 * time.Millisecond}
	if err := cfg.Validate("inputs[0]"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{t: t, lines: make(chan tail.Line, 100), cancel: cancel, done: make(chan struct{})}
	go func() { tail.New(cfg, nil, quiet).Run(ctx, h.lines); close(h.done) }()
	t.Cleanup(func() { cancel(); <-h.done })
	got := h.next(3)
	orphanLen := int64(len("orphan continuation before any start\n"))
	if string(got[0].Data) != "orphan continuation before any start" {
		t.Fatalf("orphan: %q", got[0].Data)
	}
	want := strings.TrimSuffix(first+trace, "\n")
	if string(got[1].Data) != want || got[1].Offset != orphanLen || got[1].End != orphanLen+int64(len(first+trace)) {
		t.Fatalf("record: %q %d..%d", got[1].Data, got[1].Offset, got[1].End)
	}
	if string(got[2].Data) != strings.TrimSuffix(second, "\n") { // flushed by the timeout
		t.Fatalf("last record: %q", got[2].Data)
	}
	bad := tail.DefaultConfig()
	bad.Paths = []string{p}
	bad.Multiline.Pattern = "(["
	if err := bad.Validate("inputs[0]"); err == nil || !strings.Contains(err.Error(), "multiline.pattern") {
		t.Fatalf("bad pattern: %v", err)
	}
}

// Docker keeps a container's name and image in config.v2.json beside its
// json-file log.
func TestPathFieldsReadDockerConfig(t *testing.T) {
	id := strings.Repeat("ab", 32)
	dir := filepath.Join(t.TempDir(), "docker", "containers", id)
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "config.v2.json"), []byte(`{"ID":"`+id+`","Name":"/orders-1","Config":{"Image":"shop/orders:1.4"}}`), 0o600)
	got := tail.PathFields(filepath.Join(dir, id+"-json.log"))
	if got["container.id"] != id || got["container.name"] != "orders-1" || got["container.image.name"] != "shop/orders:1.4" {
		t.Fatalf("got %v", got)
	}
}

// format: auto reads a node's /var/log/pods whatever its runtime: a file of
// docker json-file lines and a file of CRI lines, split parts joined in
// both, and a line of neither shape shipped raw.
func TestAutoFormatReadsDockerAndCRIFiles(t *testing.T) {
	dir := t.TempDir()
	ts := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	appendTo(t, filepath.Join(dir, "a.log"), dockerLine("hello ", "stdout", ts)+dockerLine("docker\n", "stdout", ts))
	h := startFormat(t, filepath.Join(dir, "*.log"), tail.FormatAuto)
	got := h.next(1)
	if string(got[0].Data) != "hello docker" || got[0].Stream != "stdout" || !got[0].Time.Equal(ts) {
		t.Fatalf("docker file: %+v", got[0])
	}
	appendTo(t, filepath.Join(dir, "b.log"), "2026-11-26T10:00:01Z stderr P hello \n2026-11-26T10:00:01Z stderr F cri\nplain text\n")
	got = h.next(2)
	if string(got[0].Data) != "hello cri" || got[0].Stream != "stderr" || got[0].Time.Second() != 1 {
		t.Fatalf("cri file: %+v", got[0])
	}
	if string(got[1].Data) != "plain text" || got[1].Stream != "" {
		t.Fatalf("raw fallback: %+v", got[1])
	}
}
