package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/logweave/logweave/internal/estest"
)

// 200 rotations by rename under a writer going as fast as it can: the
// writer keeps writing to the renamed file for a moment (as applications
// do until they reopen), then starts the new one. Every line is indexed
// exactly once.
func TestRenameRotationsUnderFullSpeedWriter(t *testing.T) {
	rotationsUnderFullSpeedWriter(t, func(int) bool { return false })
}

// 200 rotations, every other one by copytruncate (copy app.log to
// app.log.N, truncate app.log, the writer goes on at its start), under a
// writer at full speed: lines not yet read when the file is truncated are
// read from the copy, found by its first bytes. Every line exactly once.
func TestMixedRotationsUnderFullSpeedWriter(t *testing.T) {
	rotationsUnderFullSpeedWriter(t, func(r int) bool { return r%2 == 1 })
}

func rotationsUnderFullSpeedWriter(t *testing.T, copyTruncate func(r int) bool) {
	dir := t.TempDir()
	es := estest.New()
	defer es.Close()
	col := startCollector(t, dir, es.URL)
	defer stopCollector(t, col)
	logs := filepath.Join(dir, "logs")
	os.MkdirAll(logs, 0o755)
	sh := startShipper(t, dir, col.Addr(), filepath.Join(logs, "app.log*"))
	defer sh.stop(t)

	const rotations, perFile, afterRename = 200, 400, 10
	path := filepath.Join(logs, "app.log")
	open := func() *os.File {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	f := open()
	seq := 0
	line := func(f *os.File) {
		fmt.Fprintf(f, `{"level":"info","msg":"work","seq":%d}`+"\n", seq)
		seq++
	}
	for r := 0; r < rotations; r++ {
		for i := 0; i < perFile; i++ {
			line(f)
		}
		rotated := fmt.Sprintf("%s.%d", path, r)
		if copyTruncate(r) {
			b, err := os.ReadFile(path)
			if err == nil {
				err = os.WriteFile(rotated, b, 0o644)
			}
			if err == nil {
				err = os.Truncate(path, 0)
			}
			if err != nil {
				t.Fatal(err)
			}
			continue // the writer keeps its file, now empty
		}
		if err := os.Rename(path, rotated); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < afterRename; i++ { // still writing to the old file
			line(f)
		}
		f.Close()
		f = open()
	}
	for i := 0; i < perFile; i++ {
		line(f)
	}
	f.Close()
	total := seq
	eventually(t, 3*time.Minute, fmt.Sprintf("%d lines indexed", total), func() bool { return es.Count("logs-*") >= total })
	time.Sleep(500 * time.Millisecond)
	// ids are per line and file, so a line read twice (from a file and its
	// copy) would count twice: check every seq once.
	seen := make([]bool, total)
	n := 0
	for _, idx := range es.IndicesMatching("logs-*,logweave-deadletter-*") {
		for id, d := range es.Docs(idx) {
			var s int
			fmt.Sscanf(gjsonGet(d, "seq"), "%d", &s)
			if seen[s] {
				t.Fatalf("seq %d twice (id %s)", s, id)
			}
			seen[s] = true
			n++
		}
	}
	if n != total {
		t.Fatalf("%d documents for %d lines", n, total)
	}
}
