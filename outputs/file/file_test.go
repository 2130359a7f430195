package file_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/logweave/logweave/outputs/file"
	"github.com/logweave/logweave/pipeline"
)

func TestWriteAppendsPerIndex(t *testing.T) {
	dir := t.TempDir()
	o, err := file.New(file.Config{Path: dir})
	if err != nil {
		t.Fatal(err)
	}
	recs := []pipeline.Record{
		{ID: "1", Index: "logs-2026.11.25", Doc: []byte(`{"a":1}`)},
		{ID: "2", Index: "logs-2026.11.26", Doc: []byte(`{"a":2}`)},
		{ID: "3", Index: "logs-2026.11.25", Doc: []byte(`{"a":3}`)},
	}
	if err := o.Write(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	o.Close()
	got, _ := os.ReadFile(filepath.Join(dir, "logs-2026.11.25.ndjson"))
	if string(got) != "{\"a\":1}\n{\"a\":3}\n" {
		t.Fatalf("got %q", got)
	}
	got, _ = os.ReadFile(filepath.Join(dir, "logs-2026.11.26.ndjson"))
	if string(got) != "{\"a\":2}\n" {
		t.Fatalf("got %q", got)
	}
}

// A line torn by a crash (or a write cut short) is cut off at start: the
// files hold whole lines only, and the batch written again completes them.
func TestTornTailCutAtStart(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "logs-2026.11.25.ndjson")
	os.WriteFile(name, []byte("{\"a\":1}\n{\"a\":2}\n{\"a\":"), 0o644)
	o, err := file.New(file.Config{Path: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Write(context.Background(), []pipeline.Record{{ID: "3", Index: "logs-2026.11.25", Doc: []byte(`{"a":3}`)}}); err != nil {
		t.Fatal(err)
	}
	o.Close()
	if got, _ := os.ReadFile(name); string(got) != "{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n" {
		t.Fatalf("got %q", got)
	}
}

// Records of many days open at most max_open_files files at once; every
// record is written.
func TestOpenFilesBounded(t *testing.T) {
	dir := t.TempDir()
	o, err := file.New(file.Config{Path: dir, MaxOpenFiles: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	var recs []pipeline.Record
	for d := 0; d < 500; d++ {
		idx := fmt.Sprintf("logs-%04d", d)
		recs = append(recs, pipeline.Record{ID: idx, Index: idx, Doc: []byte(`{"d":1}`)}, pipeline.Record{ID: idx + "b", Index: idx, Doc: []byte(`{"d":2}`)})
	}
	for i := 0; i < len(recs); i += 50 {
		if err := o.Write(context.Background(), recs[i:i+50]); err != nil {
			t.Fatal(err)
		}
		if n := o.OpenFiles(); n > 8 {
			t.Fatalf("%d files open", n)
		}
	}
	names, _ := filepath.Glob(filepath.Join(dir, "*.ndjson"))
	if len(names) != 500 {
		t.Fatalf("%d files", len(names))
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "logs-0499.ndjson")); string(got) != "{\"d\":1}\n{\"d\":2}\n" {
		t.Fatalf("got %q", got)
	}
}
