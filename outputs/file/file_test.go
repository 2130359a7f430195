package file_test

import (
	"context"
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
