package tail

import (
	"context"
	"fmt"
	"regexp"
	"time"
)

// MultilineConfig joins records that span lines (stack traces): a line
// matching Pattern starts a record; the lines after it that do not match
// are appended (joined with \n) until the next start, or until Timeout
// passes without a new line.
type MultilineConfig struct {
	Pattern string        `yaml:"pattern"` // e.g. '^\d{4}-\d{2}-\d{2}' or '^\S'; empty: off
	Timeout time.Duration `yaml:"timeout"`
}

func (m *MultilineConfig) compile(prefix string) (*regexp.Regexp, error) {
	if m.Pattern == "" {
		return nil, nil
	}
	re, err := regexp.Compile(m.Pattern)
	if err != nil {
		return nil, fmt.Errorf("%s.multiline.pattern: %w", prefix, err)
	}
	if m.Timeout <= 0 {
		return nil, fmt.Errorf("%s.multiline.timeout: must be positive", prefix)
	}
	return re, nil
}

// record is a multiline record being assembled.
type mlRecord struct {
	line Line
	at   time.Time
}

// send hands a line on, through multiline joining when configured. The
// record's checkpoint is its last line's; until it is complete, no line of
// the file carries a checkpoint past its start (safeEnd).
func (t *Tailer) send(ctx context.Context, out chan<- Line, f *follower, l Line) error {
	if t.ml == nil {
		return f.emit(ctx, out, l)
	}
	rec := f.ml[l.Stream]
	if rec == nil || t.ml.Match(l.Data) {
		if rec != nil {
			delete(f.ml, l.Stream)
			if err := f.emit(ctx, out, rec.line); err != nil {
				return err
			}
		}
		if f.ml == nil {
			f.ml = map[string]*mlRecord{}
		}
		l.Data = append([]byte(nil), l.Data...)
		f.ml[l.Stream] = &mlRecord{line: l, at: time.Now()}
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
	rec.line.End = l.End
	rec.at = time.Now()
	return nil
}

// flushMultiline emits records that waited longer than the timeout.
func (t *Tailer) flushMultiline(ctx context.Context, out chan<- Line) error {
	if t.ml == nil {
		return nil
	}
	for _, f := range t.files {
		for stream, rec := range f.ml {
			if time.Since(rec.at) < t.cfg.Multiline.Timeout {
				continue
			}
			delete(f.ml, stream)
			if err := f.emit(ctx, out, rec.line); err != nil {
				return err
			}
		}
	}
	return nil
}
