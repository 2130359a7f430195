// Package file is the collector's file output, used when no Elasticsearch is
// configured: each record's document is appended as one NDJSON line to
// <path>/<index>.ndjson (the same daily index names Elasticsearch would get),
// and the files are fsynced before Write returns.
//
// A write that fails (a full disk, no file descriptor left) leaves no part
// of its lines behind: the file is cut back to where the write began, and a
// torn line left by a crash is cut off at start. At most max_open_files
// files are open at once; the least recently written is closed first.
package file

import (
	"bytes"
	"container/list"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/logweave/logweave/pipeline"
)

// Config is the collector's `file_output:` section.
type Config struct {
	Path string `yaml:"path"`
	// MaxOpenFiles bounds the files held open (default 64): events of
	// many days (a backfill, or wrong clocks) close the least recently
	// written instead of running out of file descriptors.
	MaxOpenFiles int `yaml:"max_open_files"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config { return Config{Path: "./data/out", MaxOpenFiles: 64} }

// Validate checks the section.
func (c *Config) Validate(prefix string) error {
	if c.MaxOpenFiles < 1 {
		return fmt.Errorf("%s.max_open_files: must be at least 1", prefix)
	}
	return nil
}

// Output appends records to per-index NDJSON files.
type Output struct {
	dir     string
	maxOpen int
	mu      sync.Mutex
	files   map[string]*list.Element // index -> element of lru holding *openFile
	lru     *list.List               // front: most recently written
	// scratch holds each index's lines of a batch; reused from batch to
	// batch (under mu), so writing makes no garbage.
	scratch map[string][]byte
	order   []string
}

type openFile struct {
	index string
	f     *os.File
}

// New creates the directory and cuts torn lines off the files in it.
func New(cfg Config) (*Output, error) {
	if cfg.Path == "" {
		return nil, fmt.Errorf("file_output.path: must not be empty")
	}
	if cfg.MaxOpenFiles <= 0 {
		cfg.MaxOpenFiles = DefaultConfig().MaxOpenFiles
	}
	if err := os.MkdirAll(cfg.Path, 0o700); err != nil {
		return nil, err
	}
	names, err := filepath.Glob(filepath.Join(cfg.Path, "*.ndjson"))
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		if err := cutTornTail(name); err != nil {
			return nil, err
		}
	}
	return &Output{dir: cfg.Path, maxOpen: cfg.MaxOpenFiles, files: map[string]*list.Element{}, lru: list.New()}, nil
}

// cutTornTail truncates a file after its last newline: what follows is
// the part of a line a crash (or a full disk) interrupted, and that line is
// written again whole when its batch is delivered again.
func cutTornTail(name string) error {
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() == 0 {
		return err
	}
	end := fi.Size()
	buf := make([]byte, 64<<10)
	for off := end; off > 0; {
		n := int64(len(buf))
		if off < n {
			n = off
		}
		off -= n
		if _, err := f.ReadAt(buf[:n], off); err != nil && err != io.EOF {
			return err
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			valid := off + int64(i) + 1
			if valid == end {
				return nil
			}
			slog.Warn("file output: cutting a torn line off the end", "file", name, "from", end, "to", valid)
			return f.Truncate(valid)
		}
	}
	slog.Warn("file output: cutting a torn line off the end", "file", name, "from", end, "to", 0)
	return f.Truncate(0)
}

// Write appends and fsyncs. A crash after the write but before the caller
// commits replays those records: readers that must not count twice dedupe
// by event.id. On an error, no line of the failed file is left half
// written, and the caller may write the batch again.
func (o *Output) Write(_ context.Context, recs []pipeline.Record) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.scratch == nil {
		o.scratch = map[string][]byte{}
	}
	byIndex, order := o.scratch, o.order[:0]
	defer func() {
		// Keep the buffers (logs and traces are written batch after
		// batch into the same day's indices), at most 16 MiB of them.
		kept := 0
		for idx, b := range byIndex {
			if kept += cap(b); kept > 16<<20 {
				delete(byIndex, idx)
				continue
			}
			byIndex[idx] = b[:0]
		}
		o.order = order[:0]
	}()
	for _, r := range recs {
		b := byIndex[r.Index]
		if len(b) == 0 { // every line adds at least its newline: first of this batch
			order = append(order, r.Index)
		}
		b = append(b, r.Doc...)
		byIndex[r.Index] = append(b, '\n')
	}
	for _, idx := range order {
		of, err := o.file(idx)
		if err != nil {
			return fmt.Errorf("file output: %w", err)
		}
		if err := appendWhole(of.f, byIndex[idx]); err != nil {
			o.drop(idx)
			return fmt.Errorf("file output: %s: %w", of.f.Name(), err)
		}
	}
	return nil
}

// appendWhole writes data at the end of f and fsyncs it, or cuts f back to
// its size before the write.
func appendWhole(f *os.File, data []byte) error {
	start, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		if terr := f.Truncate(start); terr != nil {
			return fmt.Errorf("%w (and cutting the partial write failed: %v; it is cut at the next start)", err, terr)
		}
	}
	return err
}

func (o *Output) file(index string) (*openFile, error) {
	if e, ok := o.files[index]; ok {
		o.lru.MoveToFront(e)
		return e.Value.(*openFile), nil
	}
	for o.lru.Len() >= o.maxOpen {
		o.drop(o.lru.Back().Value.(*openFile).index)
	}
	name := filepath.Join(o.dir, strings.NewReplacer("/", "_", "\\", "_", "..", "_").Replace(index)+".ndjson")
	// A write that failed and could not be cut back left a torn line.
	if err := cutTornTail(name); err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	f, err := os.OpenFile(name, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	of := &openFile{index: index, f: f}
	o.files[index] = o.lru.PushFront(of)
	return of, nil
}

// drop closes one index's file.
func (o *Output) drop(index string) {
	if e, ok := o.files[index]; ok {
		e.Value.(*openFile).f.Close()
		o.lru.Remove(e)
		delete(o.files, index)
	}
}

// OpenFiles is how many files are open now.
func (o *Output) OpenFiles() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.lru.Len()
}

// Close closes the files.
func (o *Output) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	var first error
	for _, e := range o.files {
		if err := e.Value.(*openFile).f.Close(); err != nil && first == nil {
			first = err
		}
	}
	o.files = map[string]*list.Element{}
	o.lru.Init()
	return first
}
