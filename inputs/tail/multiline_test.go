package tail_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/logweave/logweave/inputs/tail"
)

// The records of testdata/multiline_mix.log, as preset auto joins them: a
// Java stack trace with its cause, a chained Python traceback, a Go panic
// with its goroutine dump, each one record with the line that logged it.
var mixRecords = []string{
	"2026-11-26 10:00:00.001 INFO [main] started",
	"2026-11-26 10:00:01.002 ERROR [pay] charge failed\njava.lang.IllegalStateException: card processor timeout\n\tat com.example.Pay.charge(Pay.java:88)\n\tat com.example.Api.post(Api.java:12)\nCaused by: java.net.SocketTimeoutException: Read timed out\n\tat java.base/java.net.Socket.read(Socket.java:1)\n\t... 42 more",
	"2026-11-26 10:00:02.003 INFO [main] retrying",
	"ERROR:root:import failed\nTraceback (most recent call last):\n  File \"/app/main.py\", line 3, in <module>\n    import missing\nModuleNotFoundError: No module named 'missing'\n\nDuring handling of the above exception, another exception occurred:\n\nTraceback (most recent call last):\n  File \"/app/main.py\", line 5, in <module>\n    raise RuntimeError(\"boom\")\nRuntimeError: boom",
	"2026-11-26 10:00:03.004 WARN [main] degraded",
	"panic: runtime error: index out of range [3] with length 3\n\ngoroutine 1 [running]:\nmain.main()\n\t/app/main.go:5 +0x1d\nexit status 2",
	`{"level":"info","msg":"a JSON line after the panic"}`,
	"2026-11-26 10:00:04.005 INFO [main] done",
}

func multiline(preset string, maxLines int) func(*tail.Config) {
	return func(c *tail.Config) {
		c.MaxLineBytes = 1 << 20
		c.Multiline = tail.MultilineConfig{Preset: preset, MaxLines: maxLines, Timeout: 200 * time.Millisecond}
	}
}

func TestMultilinePresetAuto(t *testing.T) {
	dir := t.TempDir()
	data, _ := os.ReadFile("testdata/multiline_mix.log")
	os.WriteFile(filepath.Join(dir, "app.log"), data, 0o644)
	h := start(t, filepath.Join(dir, "*.log"), nil, multiline(tail.PresetAuto, 0))
	got := h.next(len(mixRecords))
	for i, want := range mixRecords {
		if string(got[i].Data) != want {
			t.Fatalf("record %d:\n got %q\nwant %q", i, got[i].Data, want)
		}
		if got[i].Multiline != strings.Contains(want, "\n") {
			t.Fatalf("record %d flagged multiline=%v", i, got[i].Multiline)
		}
	}
	h.none()
}

// Each preset joins its own kind and leaves the others' lines apart.
func TestMultilinePresetsApart(t *testing.T) {
	for preset, joined := range map[string]int{tail.PresetJava: 1, tail.PresetPython: 3, tail.PresetGo: 5} {
		dir := t.TempDir()
		data, _ := os.ReadFile("testdata/multiline_mix.log")
		os.WriteFile(filepath.Join(dir, "app.log"), data, 0o644)
		h := start(t, filepath.Join(dir, "*.log"), nil, multiline(preset, 0))
		found := false
		var got []tail.Line
		deadline := time.After(5 * time.Second)
	collect:
		for {
			select {
			case l := <-h.lines:
				got = append(got, l)
				if string(l.Data) == mixRecords[len(mixRecords)-1] {
					break collect
				}
			case <-deadline:
				t.Fatalf("%s: %d records", preset, len(got))
			}
		}
		for _, l := range got {
			if string(l.Data) == mixRecords[joined] {
				found = true
			}
			if l.Multiline && string(l.Data) != mixRecords[joined] && !(preset == tail.PresetJava && strings.HasPrefix(string(l.Data), "ERROR:root")) {
				// java's indented rule also takes the python frames'
				// indented lines: they continue whatever came before.
				if preset != tail.PresetJava {
					t.Errorf("%s joined what is not its own: %q", preset, l.Data)
				}
			}
		}
		if !found {
			t.Errorf("%s: its record not joined whole", preset)
		}
	}
}

// max_lines ends a record: a runaway continuation does not grow one event
// without bound.
func TestMultilineMaxLines(t *testing.T) {
	dir := t.TempDir()
	appendTo(t, filepath.Join(dir, "app.log"), "start\n"+strings.Repeat("\tat x\n", 10)+"next\n")
	h := start(t, filepath.Join(dir, "*.log"), nil, multiline(tail.PresetJava, 4))
	got := h.next(4)
	if string(got[0].Data) != "start\n\tat x\n\tat x\n\tat x" || string(got[1].Data) != "\tat x\n\tat x\n\tat x\n\tat x" || string(got[3].Data) != "next" {
		t.Fatalf("records: %q %q %q %q", got[0].Data, got[1].Data, got[2].Data, got[3].Data)
	}
}

// A record still open when the tailer stops is not emitted; the checkpoint
// of what was emitted stays before its first line, so after a restart it
// is read again, whole, with what came meanwhile.
func TestMultilineOpenRecordSurvivesARestart(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "app.log")
	appendTo(t, p, "2026-11-26 10:00:00 INFO a\n2026-11-26 10:00:01 ERROR b\njava.io.IOException: x\n\tat one\n")
	cfg := func(c *tail.Config) {
		multiline(tail.PresetJava, 0)(c)
		c.Multiline.Timeout = time.Hour // only a next line ends the record
	}
	h := start(t, p, nil, cfg)
	first := h.next(1)[0]
	if string(first.Data) != "2026-11-26 10:00:00 INFO a" {
		t.Fatalf("first: %q", first.Data)
	}
	h.none()
	h.cancel()
	<-h.done
	cps := map[string]tail.Checkpoint{first.FileID: {Path: p, Offset: first.End, Fingerprint: first.Fingerprint, FingerprintLen: first.FingerprintLen}}
	appendTo(t, p, "\tat two\n2026-11-26 10:00:02 INFO c\n")
	h = start(t, p, cps, cfg)
	got := h.next(1)
	if string(got[0].Data) != "2026-11-26 10:00:01 ERROR b\njava.io.IOException: x\n\tat one\n\tat two" || got[0].Offset != first.End {
		t.Fatalf("after the restart: %q at %d", got[0].Data, got[0].Offset)
	}
}

func TestMultilineConfigErrors(t *testing.T) {
	for _, m := range []tail.MultilineConfig{
		{Preset: "cobol", Timeout: time.Second},
		{Preset: "java", Pattern: "^x", Timeout: time.Second},
		{Preset: "java", MaxLines: -1, Timeout: time.Second},
	} {
		c := tail.DefaultConfig()
		c.Paths = []string{"/x/*.log"}
		c.Multiline = m
		if err := c.Validate("inputs[0]"); err == nil || !strings.Contains(err.Error(), "inputs[0].multiline") {
			t.Errorf("%+v: %v", m, err)
		}
	}
}

// A record open when its file is rotated away is completed from the
// rotated file (read to its end, then flushed by the timeout), never
// joined with the new file's lines.
func TestMultilineOpenRecordAcrossRotation(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "app.log")
	appendTo(t, p, "2026-11-26 10:00:01 ERROR b\njava.io.IOException: x\n\tat one\n")
	h := start(t, filepath.Join(dir, "app.log*"), nil, multiline(tail.PresetJava, 0))
	h.none() // open, waiting for more
	appendTo(t, p, "\tat two\n")
	if err := os.Rename(p, p+".1"); err != nil {
		t.Fatal(err)
	}
	appendTo(t, p, "\tat new-file line\n2026-11-26 10:00:02 INFO c\n")
	got := h.next(3)
	byData := map[string]bool{}
	for _, l := range got {
		byData[string(l.Data)] = true
	}
	for _, want := range []string{"2026-11-26 10:00:01 ERROR b\njava.io.IOException: x\n\tat one\n\tat two", "\tat new-file line", "2026-11-26 10:00:02 INFO c"} {
		if !byData[want] {
			t.Fatalf("missing %q in %v", want, byData)
		}
	}
}

// A file's own preset (a pod's annotation, through MultilineFor) replaces
// the input's for that file only: "off" reads every line apart, "" keeps
// the input's preset, and files of different pods never join each other's
// lines.
func TestMultilinePresetPerFile(t *testing.T) {
	dir := t.TempDir()
	data, _ := os.ReadFile("testdata/multiline_mix.log")
	presets := map[string]string{"java": "java", "off": "off", "input": "", "bogus": "cobol"}
	for pod := range presets {
		d := filepath.Join(dir, "var/log/pods", "ns_"+pod+"_uid-"+pod, "app")
		os.MkdirAll(d, 0o755)
		os.WriteFile(filepath.Join(d, "0.log"), data, 0o644)
	}
	cfg := tail.DefaultConfig()
	cfg.Paths = []string{filepath.Join(dir, "var/log/pods/*/*/*.log")}
	cfg.ScanInterval, cfg.PollInterval = 20*time.Millisecond, 10*time.Millisecond
	cfg.MaxLineBytes = 1 << 20
	cfg.Multiline = tail.MultilineConfig{Preset: tail.PresetAuto, Timeout: 200 * time.Millisecond}
	tl := tail.New(cfg, nil, quiet)
	var asked []string
	tl.MultilineFor(func(path string) string {
		asked = append(asked, path)
		return presets[tail.PathFields(path)["kubernetes.pod.name"]]
	})
	ctx, cancel := context.WithCancel(context.Background())
	lines := make(chan tail.Line, 1000)
	done := make(chan struct{})
	go func() { tl.Run(ctx, lines); close(done) }()
	defer func() { cancel(); <-done }()

	got := map[string][]string{}
	quietFor := time.NewTimer(time.Second)
	for n := 0; ; n++ {
		select {
		case l := <-lines:
			pod := tail.PathFields(l.Path)["kubernetes.pod.name"]
			got[pod] = append(got[pod], string(l.Data))
			quietFor.Reset(time.Second)
			continue
		case <-quietFor.C:
		}
		break
	}
	if len(asked) != len(presets) {
		t.Fatalf("asked for %d files' presets (%v), want each once", len(asked), asked)
	}
	for _, pod := range []string{"input", "bogus"} { // "" and an unknown preset: the input's (auto)
		if !slices.Equal(got[pod], mixRecords) {
			t.Fatalf("%s: %d records, want the input's auto joining:\n%q", pod, len(got[pod]), got[pod])
		}
	}
	nonBlank := 0
	for _, l := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		if strings.TrimSpace(l) != "" {
			nonBlank++
		}
	}
	if len(got["off"]) != nonBlank {
		t.Fatalf("off: %d lines, want every non-blank line apart (%d)", len(got["off"]), nonBlank)
	}
	if !slices.Contains(got["java"], mixRecords[1]) || slices.Contains(got["java"], mixRecords[5]) {
		t.Fatalf("java: want the Java trace joined and the Go panic not:\n%q", got["java"])
	}
}

// Two containers' CRI logs written line by line, alternately, each with a
// Java stack trace on stderr while stdout keeps logging between its
// frames: each record holds its own file's and stream's lines only, and the
// lines of the other stream come out apart, in order.
func TestMultilineInterleavedContainers(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{}
	for _, c := range []string{"pay", "cart"} {
		d := filepath.Join(dir, "var/log/pods", "shop_"+c+"_u-"+c, c)
		os.MkdirAll(d, 0o755)
		files[c] = filepath.Join(d, "0.log")
	}
	script := func(c string) [][2]string { // stream, text
		return [][2]string{
			{"stderr", "2026-11-26 10:00:01.002 ERROR [" + c + "] failed"},
			{"stdout", "2026-11-26 10:00:01.003 INFO [" + c + "] heartbeat 1"},
			{"stderr", "java.lang.IllegalStateException: " + c + " broke"},
			{"stdout", "2026-11-26 10:00:01.004 INFO [" + c + "] heartbeat 2"},
			{"stderr", "\tat com.example." + c + ".Run(Run.java:1)"},
			{"stderr", "\t... 7 more"},
			{"stderr", "2026-11-26 10:00:02.000 INFO [" + c + "] next"},
		}
	}
	cfg := tail.DefaultConfig()
	cfg.Paths = []string{filepath.Join(dir, "var/log/pods/*/*/*.log")}
	cfg.ScanInterval, cfg.PollInterval = 10*time.Millisecond, 5*time.Millisecond
	cfg.Format = tail.FormatCRI
	cfg.Multiline = tail.MultilineConfig{Preset: tail.PresetJava, Timeout: 300 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	lines := make(chan tail.Line, 100)
	done := make(chan struct{})
	go func() { tail.New(cfg, nil, quiet).Run(ctx, lines); close(done) }()
	defer func() { cancel(); <-done }()
	for i := range script("") {
		for _, c := range []string{"pay", "cart"} {
			l := script(c)[i]
			appendTo(t, files[c], fmt.Sprintf("2026-11-26T10:00:01.%09dZ %s F %s\n", i, l[0], l[1]))
			time.Sleep(7 * time.Millisecond) // the tailer reads between writes
		}
	}
	got := map[string][]string{} // container/stream -> records
	for n := 0; n < 2*4; n++ {
		select {
		case l := <-lines:
			c := tail.PathFields(l.Path)["kubernetes.container.name"]
			got[c+"/"+l.Stream] = append(got[c+"/"+l.Stream], string(l.Data))
		case <-time.After(5 * time.Second):
			t.Fatalf("%d records: %q", n, got)
		}
	}
	for _, c := range []string{"pay", "cart"} {
		s := script(c)
		wantErr := []string{s[0][1] + "\n" + s[2][1] + "\n" + s[4][1] + "\n" + s[5][1], s[6][1]}
		if e := got[c+"/stderr"]; !slices.Equal(e, wantErr) {
			t.Errorf("%s stderr:\n got %q\nwant %q", c, e, wantErr)
		}
		if o := got[c+"/stdout"]; !slices.Equal(o, []string{s[1][1], s[3][1]}) {
			t.Errorf("%s stdout: %q", c, o)
		}
	}
	select {
	case l := <-lines:
		t.Fatalf("an extra record: %q", l.Data)
	case <-time.After(500 * time.Millisecond):
	}
}
