package tail_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/logweave/logweave/inputs/tail"
	"github.com/logweave/logweave/internal/logtest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type harness struct {
	t      *testing.T
	lines  chan tail.Line
	cancel context.CancelFunc
	done   chan struct{}
}

func start(t *testing.T, glob string, cps map[string]tail.Checkpoint, opts ...func(*tail.Config)) *harness {
	cfg := tail.DefaultConfig()
	cfg.Paths = []string{glob}
	cfg.ScanInterval = 20 * time.Millisecond
	cfg.PollInterval = 10 * time.Millisecond
	cfg.CloseInactive = 50 * time.Millisecond
	cfg.MaxLineBytes = 100
	for _, o := range opts {
		o(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{t: t, lines: make(chan tail.Line, 1000), cancel: cancel, done: make(chan struct{})}
	go func() { tail.New(cfg, cps, quiet).Run(ctx, h.lines); close(h.done) }()
	t.Cleanup(func() { cancel(); <-h.done })
	return h
}

func (h *harness) next(n int) []tail.Line {
	h.t.Helper()
	var out []tail.Line
	timeout := time.After(5 * time.Second)
	for len(out) < n {
		select {
		case l := <-h.lines:
			out = append(out, l)
		case <-timeout:
			h.t.Fatalf("got %d lines, want %d: %v", len(out), n, out)
		}
	}
	return out
}

func (h *harness) none() {
	h.t.Helper()
	select {
	case l := <-h.lines:
		h.t.Fatalf("unexpected line %q", l.Data)
	case <-time.After(150 * time.Millisecond):
	}
}

func appendTo(t *testing.T, path, s string) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(s)
	f.Close()
}

func TestPartialLinesWaitForTheirNewline(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a.log")
	appendTo(t, p, "first\nsec")
	h := start(t, filepath.Join(dir, "*.log"), nil)
	got := h.next(1)
	if string(got[0].Data) != "first" || got[0].Offset != 0 || got[0].End != 6 {
		t.Fatalf("got %+v", got[0])
	}
	h.none()
	appendTo(t, p, "ond\r\n\n\nthird\n")
	got = h.next(2)
	if string(got[0].Data) != "second" || got[0].Offset != 6 || got[0].End != 14 {
		t.Fatalf("got %+v", got[0])
	}
	if string(got[1].Data) != "third" || got[1].Offset != 16 {
		t.Fatalf("blank lines: got %+v", got[1])
	}
}

func TestResumesFromCheckpoint(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a.log")
	appendTo(t, p, "one\ntwo\nthree\n")
	fi, _ := os.Stat(p)
	h := start(t, filepath.Join(dir, "*.log"), map[string]tail.Checkpoint{tail.FileID(fi): {Path: p, Offset: 8}})
	got := h.next(1)
	if string(got[0].Data) != "three" {
		t.Fatalf("got %q", got[0].Data)
	}
	h.none()
}

func TestRotationByRenameReadsOldFileToTheEndThenTheNewOne(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "app.log")
	appendTo(t, p, "a1\n")
	h := start(t, p, nil)
	h.next(1)
	// logrotate: rename, the writer still appends to the old file once,
	// then a new file appears at the path.
	if err := os.Rename(p, p+".1"); err != nil {
		t.Fatal(err)
	}
	appendTo(t, p+".1", "a2\n")
	appendTo(t, p, "b1\n")
	got := h.next(2)
	seen := map[string]bool{}
	for _, l := range got {
		seen[string(l.Data)] = true
	}
	if !seen["a2"] || !seen["b1"] {
		t.Fatalf("got %v", seen)
	}
}

func TestCopyTruncateStartsAgainAtZero(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "app.log")
	appendTo(t, p, "old line one\nold line two\n")
	h := start(t, p, nil)
	h.next(2)
	if err := os.Truncate(p, 0); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	appendTo(t, p, "new\n")
	got := h.next(1)
	if string(got[0].Data) != "new" || got[0].Offset != 0 {
		t.Fatalf("got %+v", got[0])
	}
}

func texts(ls []tail.Line) string {
	var b strings.Builder
	for _, l := range ls {
		b.Write(l.Data)
		b.WriteByte(' ')
	}
	return b.String()
}

func copyFile(t *testing.T, from, to string) {
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// copytruncate with lines the tailer has not read yet: they are read from
// the copy (found by its first bytes), from where the tailer was, and the
// truncated file from its start; nothing twice.
func TestCopyTruncateReadsTheRestFromTheCopy(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "app.log")
	appendTo(t, p, "line 1\nline 2\n")
	h := start(t, p+"*", nil, func(c *tail.Config) { c.PollInterval, c.ScanInterval = time.Second, time.Second })
	h.next(2)
	// While the tailer sleeps: more lines, then logrotate's copy and
	// truncate, then the writer goes on in the emptied file.
	appendTo(t, p, "line 3\nline 4\npart")
	copyFile(t, p, p+".1")
	if err := os.Truncate(p, 0); err != nil {
		t.Fatal(err)
	}
	appendTo(t, p, "new 1\n")
	got := h.next(2)
	appendTo(t, p+".1", "ial\n") // a writer that still had the old file open
	got = append(got, h.next(2)...)
	want := map[string]bool{"line 3": true, "line 4": true, "new 1": true, "partial": true}
	for _, l := range got {
		if _, ok := want[string(l.Data)]; !ok {
			t.Fatalf("unexpected %q in %s", l.Data, texts(got))
		}
	}
	seen := map[string]int{}
	for _, l := range got {
		seen[string(l.Data)]++
	}
	if seen["line 3"] != 1 || seen["line 4"] != 1 || seen["new 1"] != 1 || seen["partial"] != 1 {
		t.Fatalf("got %s", texts(got))
	}
	h.none()
}

// After a restart, a checkpoint whose file was truncated meanwhile is
// continued in the copy that starts with the checkpointed bytes.
func TestCheckpointOfATruncatedFileContinuesInItsCopy(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "app.log")
	appendTo(t, p, "line 1\nline 2\nline 3\n")
	fi, _ := os.Stat(p)
	// What a shipper that read two lines checkpointed, as it stamps them.
	var cp tail.Checkpoint
	{
		h := start(t, p, nil)
		got := h.next(3)
		cp = tail.Checkpoint{Path: p, Offset: got[1].End, Fingerprint: got[1].Fingerprint, FingerprintLen: got[1].FingerprintLen}
		h.cancel()
		<-h.done
	}
	copyFile(t, p, p+".1")
	os.Truncate(p, 0)
	appendTo(t, p, "new 1\n")
	h := start(t, p+"*", map[string]tail.Checkpoint{tail.FileID(fi): cp})
	got := h.next(2)
	if s := texts(got); !strings.Contains(s, "line 3") || !strings.Contains(s, "new 1") {
		t.Fatalf("got %s", s)
	}
	h.none()
}

// A copy of a followed file (cp app.log app.log.bak) is not read again.
func TestCopyOfAFollowedFileIsNotReadTwice(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "app.log")
	appendTo(t, p, "line 1\nline 2\n")
	h := start(t, p+"*", nil)
	h.next(2)
	copyFile(t, p, p+".bak")
	h.none()
	appendTo(t, p, "line 3\n")
	if got := h.next(1); string(got[0].Data) != "line 3" {
		t.Fatalf("got %s", texts(got))
	}
	h.none()
}

// start_position: end skips what files held at start-up, not what comes
// after, nor files that appear later.
func TestStartPositionEnd(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a.log")
	appendTo(t, p, "old 1\nold 2\n")
	h := start(t, filepath.Join(dir, "*.log"), nil, func(c *tail.Config) { c.StartPosition = "end" })
	h.none()
	appendTo(t, p, "new 1\n")
	appendTo(t, filepath.Join(dir, "b.log"), "b 1\n")
	if s := texts(h.next(2)); !strings.Contains(s, "new 1") || !strings.Contains(s, "b 1") {
		t.Fatalf("got %s", s)
	}
}

// A line longer than max_line_bytes is cut to that length and flagged,
// never dropped and never held whole in memory, whether it arrives in one
// read or grows over many; its checkpoint lands after its newline.
func TestLongLinesAreTruncatedAndFlagged(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a.log")
	appendTo(t, p, strings.Repeat("x", 250)) // no newline yet
	h := start(t, p, nil)
	h.none()
	appendTo(t, p, strings.Repeat("y", 70000)+"\n"+strings.Repeat("z", 150)+"\nshort\n")
	got := h.next(3)
	if len(got[0].Data) != 100 || string(got[0].Data) != strings.Repeat("x", 100) || !got[0].Truncated ||
		got[0].Offset != 0 || got[0].End != 250+70000+1 {
		t.Fatalf("first: %d bytes, truncated %v, %d..%d", len(got[0].Data), got[0].Truncated, got[0].Offset, got[0].End)
	}
	if string(got[1].Data) != strings.Repeat("z", 100) || !got[1].Truncated || got[1].Offset != 250+70000+1 {
		t.Fatalf("second: %q truncated %v at %d", got[1].Data, got[1].Truncated, got[1].Offset)
	}
	if string(got[2].Data) != "short" || got[2].Truncated {
		t.Fatalf("third: %+v", got[2])
	}
}

// A checkpoint names a file by device and inode plus a fingerprint of its
// first bytes: a different file that got the same inode (the old one was
// deleted) is read from the start, not from the old offset.
func TestFingerprintTellsAReusedInodeFromTheCheckpointedFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a.log")
	appendTo(t, p, "old content line one\nold content line two\n")
	h := start(t, p, nil)
	first := h.next(2)
	h.cancel()
	<-h.done
	cp := tail.Checkpoint{Path: p, Offset: first[1].End, Fingerprint: first[1].Fingerprint, FingerprintLen: first[1].FingerprintLen}
	if cp.Fingerprint == "" || cp.FingerprintLen != int(first[1].End) {
		t.Fatalf("lines carry no fingerprint: %+v", first[1])
	}
	fi, _ := os.Stat(p)
	id := tail.FileID(fi)

	// Same file, grown: resumes after the checkpoint.
	appendTo(t, p, "appended\n")
	h = start(t, p, map[string]tail.Checkpoint{id: cp})
	if got := h.next(1); string(got[0].Data) != "appended" {
		t.Fatalf("resumed at the wrong place: %q", got[0].Data)
	}
	h.cancel()
	<-h.done

	// Same inode, other content (as after delete + create reusing it):
	// read from the start.
	if err := os.WriteFile(p, []byte("brand new file, first line, longer than the old one\nsecond line\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fi, _ = os.Stat(p)
	if tail.FileID(fi) != id {
		t.Fatalf("test needs the same inode")
	}
	h = start(t, p, map[string]tail.Checkpoint{id: cp})
	if got := h.next(1); string(got[0].Data) != "brand new file, first line, longer than the old one" || got[0].Offset != 0 {
		t.Fatalf("reused inode resumed at the old offset: %q at %d", got[0].Data, got[0].Offset)
	}
}

// openFDs counts this process's descriptors open on path.
func openFDs(t *testing.T, path string) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd on this system")
	}
	n := 0
	for _, e := range ents {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && target == path {
			n++
		}
	}
	return n
}

// An idle file is closed after close_inactive (a DaemonSet may watch
// thousands) and reopened, at its place, when it grows.
func TestInactiveFileIsClosedAndReopened(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a.log")
	appendTo(t, p, "one\n")
	h := start(t, p, nil)
	h.next(1)
	deadline := time.Now().Add(3 * time.Second)
	for openFDs(t, p) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("idle file still open after close_inactive")
		}
		time.Sleep(20 * time.Millisecond)
	}
	appendTo(t, p, "two\n")
	got := h.next(1)
	if string(got[0].Data) != "two" || got[0].Offset != 4 {
		t.Fatalf("got %+v", got[0])
	}
	if openFDs(t, p) != 1 {
		t.Fatal("grown file not reopened")
	}
	h.none()
}

// A pattern that matches nothing is said once (a typo in paths: would
// otherwise ship nothing in silence); each file followed is logged at
// debug.
func TestUnmatchedPatternIsSaidOnce(t *testing.T) {
	dir := t.TempDir()
	cfg := tail.DefaultConfig()
	cfg.Paths = []string{filepath.Join(dir, "*.log")}
	cfg.ScanInterval = 10 * time.Millisecond
	log, logs := logtest.New(slog.LevelDebug)
	lines := make(chan tail.Line, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		tail.New(cfg, nil, log).Run(ctx, lines)
		close(done)
	}()
	time.Sleep(100 * time.Millisecond) // ~10 scans
	appendTo(t, filepath.Join(dir, "a.log"), "one\n")
	<-lines
	cancel()
	<-done
	if n := strings.Count(logs.String(), "no file matches the pattern"); n != 1 {
		t.Errorf("unmatched pattern said %d times, want once:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "level=DEBUG msg=\"tail: following\"") {
		t.Errorf("the followed file is not logged at debug:\n%s", logs.String())
	}
}

// Two replicas that log the same first KiB (a banner, no timestamps) write
// two files in two directories: both are read. Copies of a truncated file
// are looked for in its own directory only.
func TestSameContentInTwoDirectoriesIsTwoFiles(t *testing.T) {
	dir := t.TempDir()
	banner := strings.Repeat("starting the service, no timestamp here\n", 40) // > FingerprintBytes
	for _, d := range []string{"a", "b"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
		os.WriteFile(filepath.Join(dir, d, "app.log"), []byte(banner+"replica "+d+"\n"), 0o644)
	}
	h := start(t, filepath.Join(dir, "*", "app.log"), nil)
	got := map[string]int{}
	for _, l := range h.next(2 * 41) {
		got[filepath.Base(filepath.Dir(l.Path))]++
	}
	if got["a"] != 41 || got["b"] != 41 {
		t.Fatalf("lines per file: %v, want 41 each", got)
	}
	h.none()
}
