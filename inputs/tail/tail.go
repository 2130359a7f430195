// Package tail is the shipper's file input: it follows the files matching a
// set of glob patterns and emits their complete lines with the offsets they
// came from. It reads ahead of what was acknowledged; the caller keeps the
// checkpoints (Checkpoints) and passes them in at start, so a restart resumes
// at the last acknowledged line.
//
// A file is known by its device and inode, so a file renamed by rotation is
// read to its end under its old identity while the new file at the path
// starts at offset 0. A file that shrank (copytruncate) is read again from
// the start.
package tail

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Config is one `type: file` input.
type Config struct {
	Paths        []string      `yaml:"paths"`
	ScanInterval time.Duration `yaml:"scan_interval"`
	PollInterval time.Duration `yaml:"poll_interval"`
	MaxLineBytes int           `yaml:"max_line_bytes"`
	// CloseInactive closes a file whose path now names another file (or
	// none) after it has been idle this long.
	CloseInactive time.Duration `yaml:"close_inactive"`
	// Format is raw (default), docker (json-file) or cri; docker and cri
	// lines are unwrapped and their split parts joined.
	Format    string          `yaml:"format"`
	Multiline MultilineConfig `yaml:"multiline"`
}

// DefaultConfig returns the defaults for a file input.
func DefaultConfig() Config {
	return Config{ScanInterval: time.Second, PollInterval: 250 * time.Millisecond, MaxLineBytes: 1 << 20, CloseInactive: 5 * time.Second, Format: FormatRaw,
		Multiline: MultilineConfig{Timeout: time.Second}}
}

// Validate checks the input; prefix is its key path.
func (c *Config) Validate(prefix string) error {
	if len(c.Paths) == 0 {
		return fmt.Errorf("%s.paths: list at least one glob pattern", prefix)
	}
	for i, p := range c.Paths {
		if _, err := filepath.Match(p, ""); err != nil {
			return fmt.Errorf("%s.paths[%d]: bad pattern %q: %w", prefix, i, p, err)
		}
	}
	if c.ScanInterval <= 0 || c.PollInterval <= 0 {
		return fmt.Errorf("%s: scan_interval and poll_interval must be positive", prefix)
	}
	if err := ValidateFormat(prefix, c.Format); err != nil {
		return err
	}
	if _, err := c.Multiline.compile(prefix); err != nil {
		return err
	}
	if c.MaxLineBytes < 64 {
		return fmt.Errorf("%s.max_line_bytes: must be at least 64", prefix)
	}
	return nil
}

// Line is one complete line (without its newline).
type Line struct {
	FileID string // device:inode
	Path   string
	Offset int64 // where the line starts
	End    int64 // offset after its newline: the checkpoint once acknowledged
	Data   []byte
	// Fingerprint and FingerprintLen of the file when the line was read.
	Fingerprint    string
	FingerprintLen int
	// Truncated says the line was longer than max_line_bytes and cut.
	Truncated bool
	// For docker and cri files: the runtime's timestamp and stream.
	Time   time.Time
	Stream string
}

// Checkpoint is the acknowledged position in one file.
type Checkpoint struct {
	Path   string `json:"path"`
	Offset int64  `json:"offset"`
	// Fingerprint identifies the file's content beyond its inode: the
	// SHA-256 (hex, 16 bytes) of its first FingerprintLen bytes (at most
	// 1 KiB). A checkpoint whose fingerprint does not match the file now at
	// that device and inode belongs to a deleted file whose inode was reused.
	Fingerprint    string `json:"fingerprint,omitempty"`
	FingerprintLen int    `json:"fingerprint_len,omitempty"`
}

// FingerprintBytes is how much of a file's start identifies it.
const FingerprintBytes = 1024

// fingerprint hashes the first n bytes of f.
func fingerprint(f *os.File, n int) (string, int) {
	buf := make([]byte, n)
	got, _ := f.ReadAt(buf, 0)
	sum := sha256.Sum256(buf[:got])
	return hex.EncodeToString(sum[:16]), got
}

var (
	linesRead = promauto.NewCounter(prometheus.CounterOpts{
		Name: "logweave_tail_lines_read_total", Help: "Lines read from files."})
	filesOpen = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "logweave_tail_files_open", Help: "Files being followed."})
	truncatedLines = promauto.NewCounter(prometheus.CounterOpts{
		Name: "logweave_tail_lines_truncated_total", Help: "Lines longer than max_line_bytes, shipped cut to that length and flagged."})
)

// Tailer follows the files of one input.
type Tailer struct {
	cfg   Config
	ml    *regexp.Regexp // multiline start pattern, nil when off
	log   *slog.Logger
	start map[string]Checkpoint
	files map[string]*follower
}

type follower struct {
	id        string
	path      string
	f         *os.File
	offset    int64  // next byte to read
	pending   []byte // the start of a line whose newline has not come yet
	lineStart int64  // where that line starts
	trunc     bool   // it passed max_line_bytes
	lastData  time.Time
	fp        string // fingerprint of the first fpLen bytes
	fpLen     int
	// the parts of split container log lines being joined, per stream
	// (stdout and stderr interleave in one file)
	parts map[string]*partial
	// multiline records being assembled, per stream
	ml map[string]*mlRecord
}

type partial struct {
	text  []byte
	start int64
	trunc bool
}

// New returns a tailer that resumes from checkpoints (keyed by file id).
func New(cfg Config, checkpoints map[string]Checkpoint, log *slog.Logger) *Tailer {
	if log == nil {
		log = slog.Default()
	}
	ml, _ := cfg.Multiline.compile("") // Validate reported a bad pattern
	return &Tailer{cfg: cfg, ml: ml, log: log, start: checkpoints, files: map[string]*follower{}}
}

// FileID names a file by device and inode.
func FileID(fi os.FileInfo) string {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return fmt.Sprintf("%d:%d", st.Dev, st.Ino)
	}
	return fi.Name()
}

// Run emits lines on out until ctx ends. Sending blocks when out is full, so
// a slow collector stops the reading (backpressure) instead of growing memory.
func (t *Tailer) Run(ctx context.Context, out chan<- Line) error {
	defer func() {
		for _, f := range t.files {
			f.f.Close()
		}
		filesOpen.Sub(float64(len(t.files)))
	}()
	scan := time.NewTicker(t.cfg.ScanInterval)
	defer scan.Stop()
	t.scan()
	buf := make([]byte, 64<<10)
	for {
		progressed := false
		for _, id := range t.order() {
			n, err := t.readFile(ctx, t.files[id], buf, out)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				t.log.Warn("tail: read failed", "path", t.files[id].path, "error", err)
			}
			if n > 0 {
				progressed = true
			}
		}
		if progressed {
			select {
			case <-ctx.Done():
				return nil
			case <-scan.C:
				t.scan()
				if err := t.flushMultiline(ctx, out); err != nil {
					return nil
				}
			default:
			}
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-scan.C:
			t.scan()
		case <-time.After(t.cfg.PollInterval):
			t.maintain()
			if err := t.flushMultiline(ctx, out); err != nil {
				return nil
			}
		}
	}
}

func (t *Tailer) order() []string {
	ids := make([]string, 0, len(t.files))
	for id := range t.files {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// scan opens files that match the patterns and are not followed yet.
func (t *Tailer) scan() {
	for _, pat := range t.cfg.Paths {
		matches, _ := filepath.Glob(pat)
		for _, path := range matches {
			fi, err := os.Stat(path)
			if err != nil || !fi.Mode().IsRegular() {
				continue
			}
			id := FileID(fi)
			if f, ok := t.files[id]; ok {
				f.path = path // renamed within the pattern: same file
				continue
			}
			f, err := os.Open(path)
			if err != nil {
				t.log.Warn("tail: cannot open", "path", path, "error", err)
				continue
			}
			fo := &follower{id: id, path: path, f: f, lastData: time.Now()}
			fo.fp, fo.fpLen = fingerprint(f, FingerprintBytes)
			if cp, ok := t.start[id]; ok {
				fo.offset = cp.Offset
				switch {
				case cp.Fingerprint != "" && !fo.matches(cp):
					t.log.Warn("tail: a new file reuses the inode of a checkpointed one; reading it from the start", "path", path, "id", id, "old_path", cp.Path)
					fo.offset = 0
				case cp.Offset > fi.Size():
					t.log.Warn("tail: file is shorter than its checkpoint (truncated); reading from the start", "path", path, "checkpoint", cp.Offset, "size", fi.Size())
					fo.offset = 0
				}
			}
			fo.lineStart = fo.offset
			t.files[id] = fo
			filesOpen.Inc()
			t.log.Info("tail: following", "path", path, "id", id, "offset", fo.offset)
		}
	}
}

// truncated reports, at end of file, whether the file was cut since it was
// read: it is shorter than the read offset, or its first bytes changed (it
// was truncated and written past the old offset before we looked).
func (f *follower) truncated() bool {
	fi, err := f.f.Stat()
	if err != nil {
		return false
	}
	if fi.Size() < f.offset {
		return true
	}
	if f.fpLen == 0 {
		return false
	}
	fp, n := fingerprint(f.f, f.fpLen)
	return n < f.fpLen || fp != f.fp
}

// reset starts the file over from its beginning.
func (f *follower) reset() {
	f.offset, f.pending, f.fpLen, f.lineStart, f.trunc = 0, nil, 0, 0, false
	f.fp = ""
}

// matches reports whether the file starts as the checkpointed one did.
func (f *follower) matches(cp Checkpoint) bool {
	if cp.FingerprintLen > f.fpLen {
		return false // shorter now than the fingerprinted start
	}
	fp := f.fp
	if cp.FingerprintLen != f.fpLen {
		fp, _ = fingerprint(f.f, cp.FingerprintLen)
	}
	return fp == cp.Fingerprint
}

// maintain detects truncation and closes rotated-away files once idle.
func (t *Tailer) maintain() {
	for id, f := range t.files {
		if f.truncated() {
			t.log.Warn("tail: file truncated; reading from the start", "path", f.path, "offset", f.offset)
			f.reset()
			continue
		}
		if time.Since(f.lastData) < t.cfg.CloseInactive {
			continue
		}
		cur, err := os.Stat(f.path)
		if err == nil && FileID(cur) == id {
			continue // still the file at its path
		}
		t.log.Info("tail: closing rotated or deleted file after reading it to the end", "path", f.path, "id", id)
		f.f.Close()
		delete(t.files, id)
		filesOpen.Dec()
	}
}

// readFile reads what is new in one file and emits its complete lines.
func (t *Tailer) readFile(ctx context.Context, f *follower, buf []byte, out chan<- Line) (int, error) {
	n, err := f.f.ReadAt(buf, f.offset)
	if n == 0 {
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		if f.truncated() {
			t.log.Warn("tail: file truncated (copytruncate?); reading from the start", "path", f.path, "offset", f.offset)
			f.reset()
		}
		return 0, nil
	}
	f.lastData = time.Now()
	if f.fpLen < FingerprintBytes && f.offset+int64(n) > int64(f.fpLen) {
		f.fp, f.fpLen = fingerprint(f.f, FingerprintBytes)
	}
	max := t.cfg.MaxLineBytes
	for data := buf[:n]; len(data) > 0; {
		i := bytes.IndexByte(data, '\n')
		seg := data
		if i >= 0 {
			seg = data[:i]
		}
		// Keep at most max bytes of a line; the rest is skipped up to its
		// newline and the line is flagged truncated: memory stays bounded
		// and the line's checkpoint still lands after its newline.
		take := min(max-len(f.pending), len(seg))
		if take < 0 {
			take = 0
		}
		if take < len(seg) {
			f.trunc = true
		}
		if i < 0 {
			f.pending = append(f.pending, seg[:take]...)
			f.offset += int64(len(data))
			break
		}
		var line []byte
		if len(f.pending) > 0 {
			line = append(f.pending, seg[:take]...)
		} else {
			line = bytes.Clone(seg[:take])
		}
		trunc := f.trunc
		f.pending, f.trunc = nil, false
		f.offset += int64(i + 1)
		data = data[i+1:]
		start := f.lineStart
		f.lineStart = f.offset
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(bytes.TrimSpace(line)) == 0 {
			// Blank lines carry nothing; the checkpoint passes them with
			// the next line.
			continue
		}
		linesRead.Inc()
		if trunc {
			truncatedLines.Inc()
		}
		if err := t.emitLine(ctx, out, f, start, f.offset, line, trunc); err != nil {
			return n, err
		}
	}
	return n, nil
}

// emitLine decodes a container log line (docker, cri) and joins split
// parts; a line of another shape is shipped raw.
func (t *Tailer) emitLine(ctx context.Context, out chan<- Line, f *follower, start, end int64, line []byte, trunc bool) error {
	if t.cfg.Format == "" || t.cfg.Format == FormatRaw {
		return t.send(ctx, out, f, Line{FileID: f.id, Path: f.path, Offset: start, End: end, Data: line, Truncated: trunc})
	}
	r, ok := decode(t.cfg.Format, line)
	if !ok {
		return t.send(ctx, out, f, Line{FileID: f.id, Path: f.path, Offset: start, End: f.safeEnd(end), Data: line, Truncated: trunc})
	}
	p := f.parts[r.stream]
	if p == nil && r.partial {
		if f.parts == nil {
			f.parts = map[string]*partial{}
		}
		p = &partial{start: start}
		f.parts[r.stream] = p
	}
	text, first := r.text, start
	if p != nil {
		// Join, keeping at most max_line_bytes of the whole line.
		room := t.cfg.MaxLineBytes - len(p.text)
		if room < len(r.text) {
			p.trunc = true
			if room > 0 {
				p.text = append(p.text, r.text[:room]...)
			}
		} else {
			p.text = append(p.text, r.text...)
		}
		if r.partial {
			return nil
		}
		text, first, trunc = p.text, p.start, trunc || p.trunc
		delete(f.parts, r.stream)
	}
	if len(bytes.TrimSpace(text)) == 0 {
		return nil
	}
	if trunc {
		truncatedLines.Inc()
	}
	return t.send(ctx, out, f, Line{FileID: f.id, Path: f.path, Offset: first, End: f.safeEnd(end), Data: text, Time: r.time, Stream: r.stream, Truncated: trunc})
}

// safeEnd is the checkpoint a line may carry: never past the start of a
// line of another stream still being joined, so a restart reads that line
// whole again (what is sent twice has the same id).
func (f *follower) safeEnd(end int64) int64 {
	for _, p := range f.parts {
		end = min(end, p.start)
	}
	for _, r := range f.ml {
		end = min(end, r.line.Offset)
	}
	return end
}

// emit sends a line of f, stamped with f's fingerprint.
func (f *follower) emit(ctx context.Context, out chan<- Line, l Line) error {
	l.Fingerprint, l.FingerprintLen = f.fp, f.fpLen
	select {
	case out <- l:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
