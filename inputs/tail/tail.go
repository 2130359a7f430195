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
	"sort"
	"syscall"
	"time"

	"github.com/logweave/logweave/internal/chanx"
	"github.com/logweave/logweave/pipeline"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Config is one `type: file` input.
type Config struct {
	Paths        []string          `yaml:"paths"`
	ScanInterval time.Duration     `yaml:"scan_interval"`
	PollInterval time.Duration     `yaml:"poll_interval"`
	MaxLineBytes pipeline.ByteSize `yaml:"max_line_bytes"`
	// CloseInactive closes a file idle this long: one at its path is
	// reopened at its place when it grows; one rotated away or deleted is
	// done.
	CloseInactive time.Duration `yaml:"close_inactive"`
	// Format is raw (default), docker (json-file), cri, or auto (docker or
	// cri, told apart line by line); container lines are unwrapped and
	// their split parts joined.
	Format    string          `yaml:"format"`
	Multiline MultilineConfig `yaml:"multiline"`
	// StartPosition is where files found at start-up without a checkpoint
	// are read from: beginning (default) or end. Files that appear later
	// are always read from the beginning.
	StartPosition string `yaml:"start_position"`
}

// DefaultConfig returns the defaults for a file input.
func DefaultConfig() Config {
	return Config{ScanInterval: time.Second, PollInterval: 250 * time.Millisecond, MaxLineBytes: 1 << 20, CloseInactive: 5 * time.Second, Format: FormatRaw, StartPosition: "beginning",
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
	switch c.StartPosition {
	case "", "beginning", "end":
	default:
		return fmt.Errorf("%s.start_position: %q is not beginning or end", prefix, c.StartPosition)
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
	// Multiline says the line is a record joined from several lines.
	Multiline bool
	// For docker and cri files: the runtime's timestamp and stream.
	Time   time.Time
	Stream string
	// ReadAt is when the read that took the line in was made (one clock
	// reading per read, not per line).
	ReadAt time.Time
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
	cfg      Config
	ml       rule // multiline joining, nil when off
	maxLines int  // lines of a multiline record at most
	// presetFor names a file's own multiline preset (MultilineFor)
	presetFor func(path string) string
	log       *slog.Logger
	start     map[string]Checkpoint
	files     map[string]*follower
	// dormant are files closed after close_inactive at their path, with
	// their place kept; a scan that finds them grown reopens them.
	dormant map[string]*follower
	// ghosts are the old contents of truncated files, waiting for their
	// copies (copytruncate's rotated file) to be read on from.
	ghosts  []*ghost
	started bool // the first scan is done
	// unmatched are the paths: patterns that matched nothing, said once.
	unmatched map[string]bool
	slab      slab // where lines are copied to, out of the read buffer
}

// slab hands out copies of lines from blocks of slabBytes: one allocation
// for a block's ~200 lines instead of one per line (the shipper's most
// frequent). A block is freed once none of its lines is held any more
// (acknowledged); at most one block is partly used, so a slow writer's
// lines do not each hold a block.
type slab struct{ b []byte }

const slabBytes = 64 << 10

func (s *slab) copy(p []byte) []byte {
	if len(p) > slabBytes/8 {
		return bytes.Clone(p)
	}
	if cap(s.b)-len(s.b) < len(p) {
		s.b = make([]byte, 0, slabBytes)
	}
	n := len(s.b)
	s.b = append(s.b, p...)
	return s.b[n:len(s.b):len(s.b)] // capped: appending to a line copies it
}

// ghost is where reading a file's old content stopped when the file was
// truncated (or, after a restart, a checkpoint no file answers to). A new
// file starting with the same bytes is that content's copy: it is read on
// from the ghost's offset, with the line and records being joined.
type ghost struct {
	path      string
	fp        string
	fpLen     int
	offset    int64
	lineStart int64
	pending   []byte
	trunc     bool
	parts     map[string]*partial
	ml        map[string]*mlRecord
	at        time.Time
}

const maxGhosts = 64

// ghostTTL is how long a truncated file's copy is waited for.
func (t *Tailer) ghostTTL() time.Duration { return max(5*time.Minute, 100*t.cfg.ScanInterval) }

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
	size      int64 // when it was found
	// the parts of split container log lines being joined, per stream
	// (stdout and stderr interleave in one file)
	parts map[string]*partial
	// multiline records being assembled, per stream
	ml map[string]*mlRecord
	// rule joins the file's multiline records (nil: off), the input's
	// unless MultilineFor named another
	rule rule
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
	maxLines := cfg.Multiline.MaxLines
	if maxLines == 0 {
		maxLines = 500
	}
	return &Tailer{cfg: cfg, ml: ml, maxLines: maxLines, log: log, start: checkpoints, files: map[string]*follower{}, dormant: map[string]*follower{}}
}

// MultilineFor lets f name the multiline preset of each file the tailer
// starts to follow ("java", "python", "go", "indented", "auto", "off"), in
// place of the input's multiline setting (f returns "": the input's). The
// input's max_lines and timeout still apply. f runs on the tailer's
// goroutine, once per file; call before Run.
func (t *Tailer) MultilineFor(f func(path string) string) { t.presetFor = f }

// FileID names a file by device and inode.
func FileID(fi os.FileInfo) string {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return fmt.Sprintf("%d:%d", st.Dev, st.Ino)
	}
	return fi.Name()
}

// Emit takes one line the tailer read, on the tailer's goroutine. It
// blocks while the line cannot be taken (backpressure: a slow collector
// stops the reading instead of growing memory) and returns ctx's error
// when ctx ends first.
type Emit func(ctx context.Context, l Line) error

// Run emits lines on out until ctx ends. Sending blocks when out is full.
func (t *Tailer) Run(ctx context.Context, out chan<- Line) error {
	return t.RunFunc(ctx, func(ctx context.Context, l Line) error { return chanx.Send(ctx, out, l) })
}

// RunFunc hands each line to emit until ctx ends. Without a channel in
// between, a line's next stage (the shipper's envelope) runs on the
// tailer's goroutine: no switch between goroutines per line.
func (t *Tailer) RunFunc(ctx context.Context, out Emit) error {
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

// scan opens files that match the patterns and are not followed yet. A new
// file that starts as a truncated file did (its rotated copy) is read on
// from where that file was; one that starts as a followed file does (a copy
// being made) is left alone until that file is truncated or the copy
// differs, so no line is read twice.
func (t *Tailer) scan() {
	var fresh []*follower
	seen, awake := map[string]bool{}, map[string]bool{}
	for _, pat := range t.cfg.Paths {
		matches, _ := filepath.Glob(pat)
		if len(matches) == 0 && !t.unmatched[pat] {
			if t.unmatched == nil {
				t.unmatched = map[string]bool{}
			}
			t.unmatched[pat] = true
			t.log.Warn("tail: no file matches the pattern (yet); files that appear are picked up", "pattern", pat)
		}
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
			if d, ok := t.dormant[id]; ok {
				awake[id] = true
				d.path = path
				if fi.Size() == d.offset {
					continue // nothing new
				}
				f, err := os.Open(path)
				if err != nil {
					continue
				}
				// Reading on checks its first bytes, so a file truncated
				// meanwhile is caught as any other.
				d.f, d.lastData = f, time.Now()
				delete(t.dormant, id)
				t.files[id] = d
				filesOpen.Inc()
				continue
			}
			if seen[id] {
				continue
			}
			seen[id] = true
			f, err := os.Open(path)
			if err != nil {
				t.log.Warn("tail: cannot open", "path", path, "error", err)
				continue
			}
			fo := &follower{id: id, path: path, f: f, lastData: time.Now(), size: fi.Size()}
			fo.fp, fo.fpLen = fingerprint(f, FingerprintBytes)
			fresh = append(fresh, fo)
		}
	}
	// A closed idle file no pattern matches any more was deleted or moved
	// away after it was read to its end.
	for id := range t.dormant {
		if !awake[id] {
			delete(t.dormant, id)
		}
	}
	// Files resuming from their own checkpoints first: what is left of the
	// checkpoints at start-up are ghosts for the others.
	used := map[string]bool{}
	var rest []*follower
	for _, fo := range fresh {
		cp, ok := t.start[fo.id]
		switch {
		case !ok:
			rest = append(rest, fo)
			continue
		case cp.Fingerprint != "" && !fo.matches(cp):
			t.log.Warn("tail: a new file reuses the inode of a checkpointed one", "path", fo.path, "id", fo.id, "old_path", cp.Path)
			rest = append(rest, fo)
			continue
		case cp.Offset > fo.size:
			t.log.Warn("tail: file is shorter than its checkpoint (truncated); reading from the start", "path", fo.path, "checkpoint", cp.Offset, "size", fo.size)
		default:
			fo.offset, fo.lineStart = cp.Offset, cp.Offset
		}
		used[fo.id] = true
		t.follow(fo, "checkpoint")
	}
	if !t.started {
		for id, cp := range t.start {
			if !used[id] && cp.Fingerprint != "" && t.files[id] == nil {
				t.addGhost(&ghost{path: cp.Path, fp: cp.Fingerprint, fpLen: cp.FingerprintLen, offset: cp.Offset, lineStart: cp.Offset})
			}
		}
	}
	for _, fo := range rest {
		if fo.fpLen == 0 {
			// Empty: a new file or a copy being made, which its first
			// bytes will tell. Nothing is lost by waiting for them.
			fo.f.Close()
			continue
		}
		g, wait := t.takeGhost(fo)
		if wait {
			fo.f.Close() // a truncated file's copy, still being written
			continue
		}
		if g != nil {
			fo.offset, fo.lineStart, fo.pending, fo.trunc, fo.parts, fo.ml = g.offset, g.lineStart, g.pending, g.trunc, g.parts, g.ml
			for _, rec := range fo.ml {
				rec.line.FileID, rec.line.Path = fo.id, fo.path // a record begun in the old file ends in its copy
			}
			t.log.Info("tail: reading on in the copy of a truncated file", "path", fo.path, "of", g.path, "offset", g.lineStart)
			t.follow(fo, "copy")
			continue
		}
		if of := t.copyOf(fo); of != nil {
			fo.f.Close()
			continue
		}
		if !t.started && t.cfg.StartPosition == "end" {
			fo.offset, fo.lineStart = fo.size, fo.size
		}
		t.follow(fo, "new")
	}
	t.started = true
}

func (t *Tailer) follow(fo *follower, why string) {
	fo.rule = t.ml
	if t.presetFor != nil {
		switch p := t.presetFor(fo.path); p {
		case "":
		case "off", "none":
			fo.rule = nil
		default:
			m := MultilineConfig{Preset: p, Timeout: time.Second}
			if r, err := m.compile(""); err == nil {
				fo.rule = r
				t.log.Debug("tail: multiline preset for the file", "path", fo.path, "preset", p)
			} else {
				t.log.Warn("tail: the file's multiline preset is not one of java, python, go, indented, auto, off; using the input's", "path", fo.path, "preset", p)
			}
		}
	}
	t.files[fo.id] = fo
	filesOpen.Inc()
	t.log.Debug("tail: following", "path", fo.path, "id", fo.id, "offset", fo.offset, "from", why)
}

// prefixMatches reports whether fo's first n bytes hash to fp.
func (fo *follower) prefixMatches(fp string, n int) bool {
	if n == 0 || n > fo.fpLen {
		return false
	}
	if n == fo.fpLen {
		return fo.fp == fp
	}
	got, _ := fingerprint(fo.f, n)
	return got == fp
}

// takeGhost returns (and forgets) the ghost whose content fo starts with;
// wait says fo starts so but is not yet as long as what was read of it.
func (t *Tailer) takeGhost(fo *follower) (g *ghost, wait bool) {
	for i, g := range t.ghosts {
		if filepath.Dir(g.path) != filepath.Dir(fo.path) || !fo.prefixMatches(g.fp, g.fpLen) {
			continue
		}
		if fo.size < g.offset {
			return nil, true
		}
		t.ghosts = append(t.ghosts[:i], t.ghosts[i+1:]...)
		return g, false
	}
	return nil, false
}

// copyOf returns the followed file whose content fo is a copy of, as far as
// fo goes: its first bytes as that file had them when it was read. Copies
// are looked for in the file's own directory only (where copytruncate
// puts them; so do ghosts): two pods' replicas that log the same first
// KiB are two files.
func (t *Tailer) copyOf(fo *follower) *follower {
	if fo.fpLen == 0 {
		return nil
	}
	for _, f := range t.followed() {
		switch {
		case f.fpLen == 0, filepath.Dir(f.path) != filepath.Dir(fo.path):
		case f.fpLen <= fo.fpLen:
			if fo.prefixMatches(f.fp, f.fpLen) {
				return f
			}
		default: // fo is shorter than f's fingerprint: compare what it has
			ff := f.f
			if ff == nil { // closed while idle, at its path
				var err error
				if ff, err = os.Open(f.path); err != nil {
					continue
				}
				defer ff.Close()
			}
			if fp, n := fingerprint(ff, fo.fpLen); n == fo.fpLen && fp == fo.fp {
				return f
			}
		}
	}
	return nil
}

// followed lists the files followed, open or closed while idle.
func (t *Tailer) followed() []*follower {
	fs := make([]*follower, 0, len(t.files)+len(t.dormant))
	for _, f := range t.files {
		fs = append(fs, f)
	}
	for _, f := range t.dormant {
		fs = append(fs, f)
	}
	return fs
}

func (t *Tailer) addGhost(g *ghost) {
	g.at = time.Now()
	keep := t.ghosts[:0]
	for _, old := range t.ghosts {
		if time.Since(old.at) < t.ghostTTL() {
			keep = append(keep, old)
		}
	}
	t.ghosts = append(keep, g)
	if len(t.ghosts) > maxGhosts {
		t.ghosts = t.ghosts[len(t.ghosts)-maxGhosts:]
	}
}

// truncate starts f over after it was truncated, keeping where its old
// content stopped as a ghost, and looks for that content's copy at once.
func (t *Tailer) truncate(f *follower) {
	t.log.Warn("tail: file truncated (copytruncate?); reading it from the start and its copy, when one appears, from where it was", "path", f.path, "offset", f.offset)
	if f.fpLen > 0 {
		t.addGhost(&ghost{path: f.path, fp: f.fp, fpLen: f.fpLen, offset: f.offset, lineStart: f.lineStart,
			pending: f.pending, trunc: f.trunc, parts: f.parts, ml: f.ml})
	}
	f.reset()
	t.scan()
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
	f.fp, f.parts, f.ml = "", nil, nil
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
			t.truncate(f)
			continue
		}
		if time.Since(f.lastData) < t.cfg.CloseInactive {
			continue
		}
		cur, err := os.Stat(f.path)
		if err == nil && FileID(cur) == id {
			if len(f.ml) > 0 {
				continue // a multiline record is open
			}
			// Idle at its path: close it to free the descriptor and keep
			// its place; the scan reopens it when its size changes.
			f.f.Close()
			f.f = nil
			delete(t.files, id)
			filesOpen.Dec()
			t.dormant[id] = f
			continue
		}
		t.log.Info("tail: closing rotated or deleted file after reading it to the end", "path", f.path, "id", id)
		f.f.Close()
		delete(t.files, id)
		filesOpen.Dec()
	}
}

// readFile reads what is new in one file and emits its complete lines.
func (t *Tailer) readFile(ctx context.Context, f *follower, buf []byte, out Emit) (int, error) {
	n, err := f.f.ReadAt(buf, f.offset)
	if n == 0 {
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		if f.truncated() {
			t.truncate(f)
		}
		return 0, nil
	}
	if f.fpLen > 0 {
		// Truncated and written again past our offset since the last read
		// (copytruncate under a busy writer)? Then what was just read is
		// the new content's middle: drop it and start over; the old
		// content's rest is in its copy.
		if fp, got := fingerprint(f.f, f.fpLen); got < f.fpLen || fp != f.fp {
			t.truncate(f)
			return 0, nil
		}
	}
	f.lastData = time.Now()
	if f.fpLen < FingerprintBytes && f.offset+int64(n) > int64(f.fpLen) {
		f.fp, f.fpLen = fingerprint(f.f, FingerprintBytes)
	}
	max := int(t.cfg.MaxLineBytes)
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
			line = t.slab.copy(seg[:take])
		}
		trunc := f.trunc
		f.pending, f.trunc = nil, false
		f.offset += int64(i + 1)
		data = data[i+1:]
		start := f.lineStart
		f.lineStart = f.offset
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(bytes.TrimSpace(line)) == 0 && len(f.ml) == 0 {
			// Blank lines carry nothing; the checkpoint passes them with
			// the next line. (Inside a multiline record they may be part
			// of it: a Go goroutine dump, a chained Python traceback.)
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
func (t *Tailer) emitLine(ctx context.Context, out Emit, f *follower, start, end int64, line []byte, trunc bool) error {
	if t.cfg.Format == "" || t.cfg.Format == FormatRaw {
		return t.send(ctx, out, f, Line{ReadAt: f.lastData, FileID: f.id, Path: f.path, Offset: start, End: end, Data: line, Truncated: trunc})
	}
	r, ok := decode(t.cfg.Format, line)
	if !ok {
		return t.send(ctx, out, f, Line{ReadAt: f.lastData, FileID: f.id, Path: f.path, Offset: start, End: f.safeEnd(end), Data: line, Truncated: trunc})
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
		room := int(t.cfg.MaxLineBytes) - len(p.text)
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
	if len(bytes.TrimSpace(text)) == 0 && f.ml[r.stream] == nil {
		return nil
	}
	if trunc {
		truncatedLines.Inc()
	}
	return t.send(ctx, out, f, Line{ReadAt: f.lastData, FileID: f.id, Path: f.path, Offset: first, End: f.safeEnd(end), Data: text, Time: r.time, Stream: r.stream, Truncated: trunc})
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
func (f *follower) emit(ctx context.Context, out Emit, l Line) error {
	l.Fingerprint, l.FingerprintLen = f.fp, f.fpLen
	return out(ctx, l)
}
