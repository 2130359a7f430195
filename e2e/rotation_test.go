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
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	seq := 0
	line := func(f *os.File) {
		fmt.Fprintf(f, `{"level":"info","msg":"work","seq":%d}`+"\n", seq)
		seq++
	}
	for r := 0; r < rotations; r++ {
		for i := 0; i < perFile; i++ {
			line(f)
		}
		if err := os.Rename(path, fmt.Sprintf("%s.%d", path, r)); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < afterRename; i++ { // still writing to the old file
			line(f)
		}
		f.Close()
		if f, err = os.Create(path); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < perFile; i++ {
		line(f)
	}
	f.Close()
	total := seq
	eventually(t, 3*time.Minute, fmt.Sprintf("%d lines indexed", total), func() bool { return es.Count("logs-*") >= total })
	time.Sleep(500 * time.Millisecond)
	if n := es.Count("logs-*"); n != total {
		t.Fatalf("%d documents for %d lines", n, total)
	}
	// ids are per line, so count == total means none lost; check no seq
	// was indexed under two ids either.
	seen := make([]bool, total)
	for _, idx := range es.Indices() {
		for id, d := range es.Docs(idx) {
			var s int
			fmt.Sscanf(gjsonGet(d, "seq"), "%d", &s)
			if seen[s] {
				t.Fatalf("seq %d twice (id %s)", s, id)
			}
			seen[s] = true
		}
	}
}
