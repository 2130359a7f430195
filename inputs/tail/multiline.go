package tail

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"time"
)

// MultilineConfig joins records that span lines (stack traces), per file
// and stream, never across files. Either a Pattern (a line matching it
// starts a record; the lines after it that do not match are appended) or a
// Preset:
//
//   - java: indented lines, `at ...` frames, `... N more`, `Caused by:`,
//     `Suppressed:`, and an exception line (`x.y.FooException: ...`) right
//     after the line that logged it;
//   - python: `Traceback (most recent call last):` and its indented frames
//     up to and with the exception line, chained tracebacks (`During
//     handling of the above exception ...`) included;
//   - go: everything after `panic:`, `fatal error:` or `http: panic
//     serving` (goroutine dumps, blank lines included) until a line that
//     starts like a log line (a date or `{`);
//   - indented: any line starting with a space or a tab;
//   - auto: all of these.
//
// Lines are joined with \n. A record ends at the next line that does not
// continue it, after Timeout without a new line, or at MaxLines lines; a
// record of more than one line is flagged (Line.Multiline). Until it ends,
// the file's checkpoint stays before its first line, so a record open
// across a rotation or a restart is read again whole.
type MultilineConfig struct {
	Pattern  string        `yaml:"pattern"` // e.g. '^\d{4}-\d{2}-\d{2}' or '^\S'; empty: off unless a preset
	Preset   string        `yaml:"preset"`  // java | python | go | indented | auto; empty: off unless a pattern
	MaxLines int           `yaml:"max_lines"`
	Timeout  time.Duration `yaml:"timeout"`
}

// Multiline presets.
const (
	PresetJava     = "java"
	PresetPython   = "python"
	PresetGo       = "go"
	PresetIndented = "indented"
	PresetAuto     = "auto"
)

// rule says whether a line continues the open record.
type rule interface {
	continues(rec *mlRecord, line []byte) bool
}

func (m *MultilineConfig) compile(prefix string) (rule, error) {
	if m.Pattern == "" && m.Preset == "" {
		return nil, nil
	}
	if m.Pattern != "" && m.Preset != "" {
		return nil, fmt.Errorf("%s.multiline: pattern or preset, not both", prefix)
	}
	if m.Timeout <= 0 {
		return nil, fmt.Errorf("%s.multiline.timeout: must be positive", prefix)
	}
	if m.MaxLines < 0 {
		return nil, fmt.Errorf("%s.multiline.max_lines: must not be negative (0: 500)", prefix)
	}
	if m.Pattern != "" {
		re, err := regexp.Compile(m.Pattern)
		if err != nil {
			return nil, fmt.Errorf("%s.multiline.pattern: %w", prefix, err)
		}
		return patternRule{re}, nil
	}
	switch m.Preset {
	case PresetJava, PresetPython, PresetGo, PresetIndented, PresetAuto:
		return presetRule(m.Preset), nil
	}
	return nil, fmt.Errorf("%s.multiline.preset: %q is not one of java, python, go, indented, auto", prefix, m.Preset)
}

type patternRule struct{ re *regexp.Regexp }

func (r patternRule) continues(_ *mlRecord, line []byte) bool { return !r.re.Match(line) }

type presetRule string

var (
	javaFrame     = regexp.MustCompile(`^\s+at |^\s*\.\.\. \d+ (more|common frames omitted)|^\s*(Caused by|Suppressed): `)
	javaException = regexp.MustCompile(`^([a-zA-Z_$][\w$]*\.)+[\w$]*(Exception|Error|Throwable)(: |$)`)
	goPanic       = regexp.MustCompile(`^(panic: |fatal error: |http: panic serving )`)
	logLineStart  = regexp.MustCompile(`^(\{|\[?\d{4}-\d{2}-\d{2}|\[?[A-Z][a-z]{2} [ \d]\d \d{2}:)`)
)

// Python traceback states of a record.
const (
	stateNone = iota
	statePyTraceback
	statePyDone
	stateGoPanic
)

func (r presetRule) continues(rec *mlRecord, line []byte) bool {
	all := r == PresetAuto
	if (all || r == PresetGo) && rec.state == stateGoPanic {
		return !logLineStart.Match(line)
	}
	if all || r == PresetPython {
		switch {
		case bytes.Equal(line, []byte("Traceback (most recent call last):")):
			rec.state = statePyTraceback
			return true
		case rec.state == statePyTraceback:
			if len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
				return true
			}
			rec.state = statePyDone // the exception line ends the traceback
			return true
		case rec.state == statePyDone && (len(line) == 0 || bytes.HasPrefix(line, []byte("During handling of the above exception")) ||
			bytes.HasPrefix(line, []byte("The above exception was the direct cause"))):
			return true // a chained traceback follows
		}
	}
	if all || r == PresetJava {
		if javaFrame.Match(line) || rec.lines == 1 && javaException.Match(line) {
			return true
		}
	}
	if all || r == PresetIndented || r == PresetJava {
		if len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
			return true
		}
	}
	return false
}

// starts sets a new record's state from its first line.
func (r presetRule) starts(rec *mlRecord) {
	if (r == PresetAuto || r == PresetGo) && goPanic.Match(rec.line.Data) {
		rec.state = stateGoPanic
	}
}

// record is a multiline record being assembled.
type mlRecord struct {
	line  Line
	at    time.Time
	lines int // joined so far
	state int // of a preset
}

// finish is the record's line, without the blank lines it ended with.
func (rec *mlRecord) finish() Line {
	rec.line.Data = bytes.TrimRight(rec.line.Data, "\n")
	return rec.line
}

// send hands a line on, through multiline joining when configured. The
// record's checkpoint is its last line's; until it is complete, no line of
// the file carries a checkpoint past its start (safeEnd).
func (t *Tailer) send(ctx context.Context, out Emit, f *follower, l Line) error {
	if f.rule == nil {
		return f.emit(ctx, out, l)
	}
	rec := f.ml[l.Stream]
	if len(bytes.TrimSpace(l.Data)) == 0 {
		// A blank line never starts a record; one the open record does
		// not take is skipped (the checkpoint passes it with the next).
		if rec == nil || rec.lines >= t.maxLines || !f.rule.continues(rec, l.Data) {
			return nil
		}
		rec.line.Data = append(rec.line.Data, '\n')
		rec.line.End = l.End
		rec.lines++
		return nil
	}
	if rec == nil || rec.lines >= t.maxLines || !f.rule.continues(rec, l.Data) {
		if rec != nil {
			delete(f.ml, l.Stream)
			if err := f.emit(ctx, out, rec.finish()); err != nil {
				return err
			}
		}
		if f.ml == nil {
			f.ml = map[string]*mlRecord{}
		}
		l.Data = append([]byte(nil), l.Data...)
		rec = &mlRecord{line: l, at: time.Now(), lines: 1}
		if p, ok := f.rule.(presetRule); ok {
			p.starts(rec)
		}
		f.ml[l.Stream] = rec
		return nil
	}
	room := int(t.cfg.MaxLineBytes) - len(rec.line.Data) - 1
	switch {
	case room >= len(l.Data):
		rec.line.Data = append(append(rec.line.Data, '\n'), l.Data...)
	case room > 0:
		rec.line.Data = append(append(rec.line.Data, '\n'), l.Data[:room]...)
		rec.line.Truncated = true
	default:
		rec.line.Truncated = true
	}
	rec.line.Truncated = rec.line.Truncated || l.Truncated
	rec.line.Multiline = true
	rec.line.End = l.End
	rec.lines++
	rec.at = time.Now()
	return nil
}

// flushMultiline emits records that waited longer than the timeout.
func (t *Tailer) flushMultiline(ctx context.Context, out Emit) error {
	timeout := t.cfg.Multiline.Timeout
	if timeout <= 0 { // off in the input's config, but a file's preset is on
		timeout = time.Second
	}
	for _, f := range t.files {
		for stream, rec := range f.ml {
			if time.Since(rec.at) < timeout {
				continue
			}
			delete(f.ml, stream)
			if err := f.emit(ctx, out, rec.finish()); err != nil {
				return err
			}
		}
	}
	return nil
}
