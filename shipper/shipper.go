// Package shipper wires the shipper: file inputs feed a bounded queue, the
// sender delivers batches to the collector, and a file's checkpoint moves
// only when the collector acknowledged the batch holding its lines.
package shipper

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/logweave/logweave/filters/privacy"
	"github.com/logweave/logweave/inputs/tail"
	"github.com/logweave/logweave/internal/chanx"
	"github.com/logweave/logweave/internal/fsutil"
	"github.com/logweave/logweave/kubemeta"
	"github.com/logweave/logweave/outputs/collector"
	"github.com/logweave/logweave/pipeline"
)

// Shipper is one running shipper.
type Shipper struct {
	cfg  *Config
	log  *slog.Logger
	host string

	listeners []listener        // by input index; nil for file inputs
	kube      *kubemeta.Client  // pods' annotations; nil unless kubernetes.annotations
	red       *privacy.Redactor // privacy:; nil: off

	mu          sync.Mutex
	checkpoints map[string]tail.Checkpoint
	acked       int64
	running     bool       // inputs and sender started, not yet stopping
	saveErr     error      // the last checkpoint save's error
	dirty       bool       // checkpoints changed since the last save
	lastSave    time.Time  // when checkpoints were last saved
	saveMu      sync.Mutex // one save at a time (acks and the saver)
}

// New loads the checkpoints.
func New(cfg *Config, log *slog.Logger) (*Shipper, error) {
	if log == nil {
		log = slog.Default()
	}
	host := cfg.Host.Name
	if host == "" {
		host, _ = os.Hostname()
	}
	s := &Shipper{cfg: cfg, log: log, host: host, checkpoints: map[string]tail.Checkpoint{}}
	if err := os.MkdirAll(cfg.State.Path, 0o700); err != nil {
		return nil, fmt.Errorf("state.path: %w", err)
	}
	data, err := os.ReadFile(s.statePath())
	switch {
	case os.IsNotExist(err):
	case err != nil:
		return nil, err
	default:
		if err := json.Unmarshal(data, &s.checkpoints); err != nil {
			return nil, fmt.Errorf("state: %s is damaged: %w", s.statePath(), err)
		}
	}
	if cfg.Privacy != nil {
		if s.red, err = privacy.New(*cfg.Privacy); err != nil {
			return nil, err
		}
	}
	if cfg.Kubernetes.Annotations {
		if s.kube, err = kubemeta.New(cfg.Kubernetes, log); err != nil {
			return nil, err
		}
	}
	// Listening inputs listen from here on: what arrives before Run is
	// spooled then.
	s.listeners = make([]listener, len(cfg.Inputs))
	for i, in := range cfg.Inputs {
		var l listener
		dir := spoolDir(cfg.State.Path, in.Type, i)
		switch in.Type {
		case "gelf":
			l, err = openGELF(in.GELF, in.Spool, dir, host, log)
		case "syslog":
			l, err = openSyslog(in.Syslog, in.Spool, dir, host, log)
		case "forward":
			l, err = openForward(in.Forward, in.Spool, dir, host, log)
		default:
			continue
		}
		if err != nil {
			s.closeListeners()
			return nil, fmt.Errorf("inputs[%d]: %w", i, err)
		}
		if s.red != nil {
			l.redactWith(s.red)
		}
		s.listeners[i] = l
	}
	return s, nil
}

func (s *Shipper) closeListeners() {
	for _, l := range s.listeners {
		if l != nil {
			l.close()
		}
	}
}

// ListenAddr is the address listening input i (its index in inputs: a
// gelf, syslog or forward input) listens on; "" for a file input.
func (s *Shipper) ListenAddr(i int) string {
	if i < 0 || i >= len(s.listeners) || s.listeners[i] == nil {
		return ""
	}
	return s.listeners[i].Addr()
}

func (s *Shipper) statePath() string { return filepath.Join(s.cfg.State.Path, "checkpoints.json") }

// Acked is how many events the collector acknowledged since start.
func (s *Shipper) Acked() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acked
}

// Ready says whether the shipper is running its inputs and can keep its
// checkpoints, and if not, why (for /readyz).
func (s *Shipper) Ready() (bool, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running {
		return false, "not running"
	}
	// Every reason, not the first: a full state disk stops both the
	// checkpoints and the spools, and the operator is told of both.
	var why []string
	if s.saveErr != nil {
		why = append(why, "cannot save checkpoints in state.path: "+s.saveErr.Error())
	}
	for i, l := range s.listeners {
		if l == nil {
			continue
		}
		if r := l.refusing(); r != "" {
			why = append(why, fmt.Sprintf("the %s spool of inputs[%d] refuses messages (the receiver waits; UDP overflow is dropped by the kernel): %s", s.cfg.Inputs[i].Type, i, r))
		}
	}
	return len(why) == 0, strings.Join(why, "; ")
}

func (s *Shipper) setRunning(v bool) {
	s.mu.Lock()
	s.running = v
	s.mu.Unlock()
}

// Run ships until ctx ends, then delivers what it holds (for up to 5 s)
// and saves the checkpoints.
func (s *Shipper) Run(ctx context.Context) error {
	// What the inputs read ahead of the sender (queue_size), taken by the
	// sender in runs: a run of items per switch to it, not one.
	items := make(chan collector.Item, s.cfg.QueueSize)
	s.mu.Lock()
	start := make(map[string]tail.Checkpoint, len(s.checkpoints))
	for k, v := range s.checkpoints {
		start[k] = v
	}
	s.mu.Unlock()

	inCtx, stopInputs := context.WithCancel(ctx)
	defer stopInputs()
	var inputs sync.WaitGroup
	for i := range s.cfg.Inputs {
		if l := s.listeners[i]; l != nil {
			inputs.Add(1)
			go func() {
				defer inputs.Done()
				l.run(inCtx, items)
			}()
			continue
		}
		t := tail.New(s.cfg.Inputs[i].Config, start, s.log)
		if s.kube != nil {
			t.MultilineFor(func(path string) string {
				m := tail.PathFields(path)
				return s.kube.MultilinePreset(m["kubernetes.namespace"], m["kubernetes.pod.name"], m["kubernetes.pod.uid"], m["kubernetes.container.name"])
			})
		}
		inputs.Add(1)
		go func() {
			defer inputs.Done()
			t.RunFunc(inCtx, s.fileItems(items))
		}()
	}
	sender, err := collector.NewSender(s.cfg.Collector, s.log)
	if err != nil {
		stopInputs()
		inputs.Wait()
		s.closeListeners()
		return err
	}
	s.setRunning(true)
	// Checkpoints acknowledged since the last save are saved every
	// flush_interval, and a failed save is tried again every second, so
	// that readiness comes back as soon as the disk has room, not at the
	// next acknowledgement (there may be none while nothing is written).
	saveCtx, stopSaving := context.WithCancel(ctx)
	go func() {
		every := time.Second
		if f := s.cfg.State.FlushInterval; f > 0 && f < every {
			every = f
		}
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-saveCtx.Done():
				return
			case <-t.C:
				s.mu.Lock()
				failed, due := s.saveErr != nil, s.dirty && time.Since(s.lastSave) >= s.cfg.State.FlushInterval
				s.mu.Unlock()
				if !failed && !due {
					continue
				}
				if err := s.save(); err == nil && failed {
					s.log.Info("shipper: checkpoints saved again")
				}
			}
		}
	}()
	sender.Run(ctx, items, s.ack, 5*time.Second)
	stopSaving()
	s.setRunning(false)
	stopInputs()
	inputs.Wait()
	s.closeListeners()
	return s.save()
}

// fileItems turns a file input's lines into envelopes for the sender, on
// the tailer's goroutine (one per input: its caches are its own).
func (s *Shipper) fileItems(items chan<- collector.Item) tail.Emit {
	fields := newFieldCache()
	var marks []lineMark // the lines' acknowledgement marks, allocated in runs
	var file *fileMark   // the file the last line came from
	return func(ctx context.Context, l tail.Line) error {
		at := l.Time // the container runtime's
		if at.IsZero() {
			at = l.ReadAt
		}
		if at.IsZero() {
			at = time.Now()
		}
		flds := fields.of(l)
		if s.red != nil {
			var n int
			if l.Data, n = s.red.RedactLine(nil, l.Data); n > 0 && !bytes.HasPrefix(l.Data, []byte("{")) {
				flds = redactedField(flds) // a JSON line says so itself
			}
		}
		if len(marks) == cap(marks) {
			marks = make([]lineMark, 0, 256)
		}
		if file == nil || file.id != l.FileID || file.cp.Path != l.Path || file.cp.FingerprintLen != l.FingerprintLen || file.cp.Fingerprint != l.Fingerprint {
			file = &fileMark{id: l.FileID, cp: tail.Checkpoint{Path: l.Path, Fingerprint: l.Fingerprint, FingerprintLen: l.FingerprintLen}}
		}
		marks = append(marks, lineMark{file: file, end: l.End})
		it := collector.Item{
			Envelope: pipeline.Envelope{
				ID:     pipeline.EventID(s.host, l.FileID, l.Offset, 0, l.Data),
				ReadAt: at,
				Host:   s.host,
				Path:   l.Path,
				Offset: l.Offset,
				Line:   l.Data,
				Fields: flds,
			},
			// A pointer: an Ack holding the mark itself was an allocation
			// per line.
			Ack: &marks[len(marks)-1],
		}
		return chanx.Send(ctx, items, it)
	}
}

// lineMark is what acknowledging a file's line moves its checkpoint to:
// the file as the line was read from it (shared by its lines) and the
// line's end. 16 bytes, in runs of 256: a whole tail.Line per line was
// the shipper's largest allocation (~170 bytes a line).
type lineMark struct {
	file *fileMark
	end  int64
}

// fileMark is a file's identity (its FileID, and its checkpoint but for
// the offset), as its lines were read.
type fileMark struct {
	id string
	cp tail.Checkpoint
}

// ack advances checkpoints past an acknowledged batch and saves them.
func (s *Shipper) ack(batch []collector.Item) {
	s.mu.Lock()
	var commits []spoolMark
	for _, it := range batch {
		switch a := it.Ack.(type) {
		case *lineMark:
			// Batches are acknowledged in order and a file's lines are
			// read in order, so the last line of a file in the batch is
			// its mark.
			cp := a.file.cp
			cp.Offset = a.end
			s.checkpoints[a.file.id] = cp
		case spoolMark:
			if a.commit {
				commits = append(commits, a)
			}
		}
	}
	s.acked += int64(len(batch))
	s.dirty = true
	due := time.Since(s.lastSave) >= s.cfg.State.FlushInterval
	s.mu.Unlock()
	if due { // else the saver does, within flush_interval
		if err := s.save(); err != nil {
			s.log.Error("shipper: saving checkpoints failed; lines may be sent again after a restart", "error", err)
		}
	}
	for _, m := range commits {
		if err := m.spool.Commit(m.pos); err != nil {
			s.log.Error("shipper: committing the GELF spool failed; messages may be sent again after a restart", "error", err)
		}
	}
}

// save writes the checkpoints atomically (write, fsync, rename).
func (s *Shipper) save() error {
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	s.mu.Lock()
	data, err := json.MarshalIndent(s.checkpoints, "", "  ")
	s.dirty, s.lastSave = false, time.Now()
	s.mu.Unlock()
	if err != nil {
		return err
	}
	err = fsutil.WriteFileAtomic(s.statePath(), data)
	s.mu.Lock()
	s.saveErr = err
	s.mu.Unlock()
	return err
}

// fieldCache holds the metadata fields derived from each file's path.
type fieldCache struct {
	byPath map[string][]byte
}

// redactedField adds labels.redacted: true to a line's envelope fields (a
// copy: the cached fields are shared by the file's lines).
func redactedField(f []byte) []byte {
	const kv = `"labels.redacted":true`
	if len(f) < 2 {
		return []byte("{" + kv + "}")
	}
	out := append(make([]byte, 0, len(f)+len(kv)+1), f[:len(f)-1]...)
	if len(f) > 2 {
		out = append(out, ',')
	}
	return append(append(out, kv...), '}')
}

func newFieldCache() *fieldCache { return &fieldCache{byPath: map[string][]byte{}} }

// of returns the envelope fields for a line: its path's Kubernetes and
// container metadata, for container logs the stream, and log.flags for a
// truncated line or a multiline record.
func (c *fieldCache) of(l tail.Line) []byte {
	base, ok := c.byPath[l.Path]
	if !ok {
		m := tail.PathFields(l.Path)
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			base = append(base, ',')
			base = pipeline.AppendJSONString(base, k)
			base = append(base, ':')
			base = pipeline.AppendJSONString(base, m[k])
		}
		if len(c.byPath) > 10000 {
			clear(c.byPath)
		}
		c.byPath[l.Path] = base
	}
	if len(base) == 0 && l.Stream == "" && !l.Truncated && !l.Multiline {
		return nil
	}
	out := []byte{'{'}
	if l.Stream != "" {
		out = append(out, `,"stream":`...)
		out = pipeline.AppendJSONString(out, l.Stream)
	}
	switch { // as Filebeat flags them
	case l.Truncated && l.Multiline:
		out = append(out, `,"log.flags":["multiline","truncated"]`...)
	case l.Truncated:
		out = append(out, `,"log.flags":["truncated"]`...)
	case l.Multiline:
		out = append(out, `,"log.flags":["multiline"]`...)
	}
	out = append(out, base...)
	out = append(out, '}')
	if out[1] == ',' {
		out = append(out[:1], out[2:]...)
	}
	return out
}
