// Package file is the collector's file output, used when no Elasticsearch is
// configured: each record's document is appended as one NDJSON line to
// <path>/<index>.ndjson (the same daily index names Elasticsearch would get),
// and the files are fsynced before Write returns.
package file

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/logweave/logweave/pipeline"
)

// Config is the collector's `file_output:` section.
type Config struct {
	Path string `yaml:"path"`
}

// Output appends records to per-index NDJSON files.
type Output struct {
	dir   string
	mu    sync.Mutex
	files map[string]*os.File
}

// New creates the directory.
func New(cfg Config) (*Output, error) {
	if cfg.Path == "" {
		return nil, fmt.Errorf("file_output.path: must not be empty")
	}
	if err := os.MkdirAll(cfg.Path, 0o755); err != nil {
		return nil, err
	}
	return &Output{dir: cfg.Path, files: map[string]*os.File{}}, nil
}

// Write appends and fsyncs. A crash after the write but before the caller
// commits replays those records: readers that must not count twice dedupe
// by event.id.
func (o *Output) Write(_ context.Context, recs []pipeline.Record) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	byIndex := map[string][]byte{}
	var order []string
	for _, r := range recs {
		b, ok := byIndex[r.Index]
		if !ok {
			order = append(order, r.Index)
		}
		b = append(b, r.Doc...)
		byIndex[r.Index] = append(b, '\n')
	}
	for _, idx := range order {
		f, err := o.file(idx)
		if err != nil {
			return err
		}
		if _, err := f.Write(byIndex[idx]); err != nil {
			return fmt.Errorf("file output: %w", err)
		}
		if err := f.Sync(); err != nil {
			return fmt.Errorf("file output: %w", err)
		}
	}
	return nil
}

func (o *Output) file(index string) (*os.File, error) {
	if f, ok := o.files[index]; ok {
		return f, nil
	}
	name := strings.NewReplacer("/", "_", "\\", "_", "..", "_").Replace(index) + ".ndjson"
	f, err := os.OpenFile(filepath.Join(o.dir, name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	o.files[index] = f
	return f, nil
}

// Close closes the files.
func (o *Output) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	var first error
	for _, f := range o.files {
		if err := f.Close(); err != nil && first == nil {
			first = err
		}
	}
	o.files = map[string]*os.File{}
	return first
}
