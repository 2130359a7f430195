package pipeline

import (
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// IndexPattern is a Logstash-style index name such as "logs-%{+yyyy.MM.dd}":
// literal text with %{+FORMAT} date parts, FORMAT in Joda/Logstash syntax
// (yyyy or YYYY year, xxxx week-year, MM month, dd day, HH hour, ww week of year). Dates are
// taken from the event's @timestamp in UTC, as Logstash does.
type IndexPattern struct {
	src   string
	parts []patternPart

	last atomic.Pointer[namedMinute] // the name Name gave last, and its minute
}

// namedMinute is an index name and the minute it is the name for (Unix
// minutes: no token is finer than a minute).
type namedMinute struct {
	minute int64
	name   string
}

type patternPart struct {
	lit    string
	tokens []string // date tokens; empty for a literal part
}

// ParseIndexPattern parses s, rejecting unknown date tokens.
func ParseIndexPattern(s string) (*IndexPattern, error) {
	if s == "" {
		return nil, fmt.Errorf("index pattern is empty")
	}
	p := &IndexPattern{src: s}
	rest := s
	for {
		i := strings.Index(rest, "%{")
		if i < 0 {
			if rest != "" {
				p.parts = append(p.parts, patternPart{lit: rest})
			}
			break
		}
		if i > 0 {
			p.parts = append(p.parts, patternPart{lit: rest[:i]})
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return nil, fmt.Errorf("index pattern %q: unclosed %%{", s)
		}
		inner := rest[i+2 : i+j]
		if !strings.HasPrefix(inner, "+") {
			return nil, fmt.Errorf("index pattern %q: only date parts %%{+FORMAT} are supported, got %%{%s}", s, inner)
		}
		toks, err := dateTokens(inner[1:])
		if err != nil {
			return nil, fmt.Errorf("index pattern %q: %w", s, err)
		}
		p.parts = append(p.parts, patternPart{tokens: toks})
		rest = rest[i+j+1:]
	}
	return p, nil
}

// dateTokens splits a Joda format into runs of one letter and literals.
func dateTokens(f string) ([]string, error) {
	var toks []string
	for i := 0; i < len(f); {
		c := f[i]
		j := i
		for j < len(f) && f[j] == c {
			j++
		}
		run := f[i:j]
		switch {
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			switch run {
			case "yyyy", "YYYY", "xxxx", "yy", "YY", "MM", "M", "dd", "d", "HH", "H", "ww", "w", "mm":
			default:
				return nil, fmt.Errorf("unsupported date token %q", run)
			}
			toks = append(toks, run)
		default:
			toks = append(toks, "'"+run) // literal
		}
		i = j
	}
	return toks, nil
}

// String returns the pattern as written.
func (p *IndexPattern) String() string { return p.src }

// PatternPrefix is the literal start of an index pattern, before its first
// date part ("logs-" of "logs-%{+yyyy.MM.dd}"): with a * it names all the
// indices the pattern makes.
func PatternPrefix(pattern string) string {
	if i := strings.Index(pattern, "%{"); i >= 0 {
		return pattern[:i]
	}
	return pattern
}

// Format returns the index name for an event stamped t.
func (p *IndexPattern) Format(t time.Time) string {
	return string(p.Append(nil, t))
}

// Name is Format, from the name it gave last when t is in the same minute
// (most events name the index the previous one did): one string per
// minute, not one formatting and one string per event. Safe for concurrent
// use.
func (p *IndexPattern) Name(t time.Time) string {
	u := t.Unix()
	minute := u / 60
	if u%60 < 0 {
		minute--
	}
	if last := p.last.Load(); last != nil && last.minute == minute {
		return last.name
	}
	var buf [64]byte
	name := string(p.Append(buf[:0], t))
	p.last.Store(&namedMinute{minute: minute, name: name})
	return name
}

// Append appends the index name for t to dst.
func (p *IndexPattern) Append(dst []byte, t time.Time) []byte {
	t = t.UTC()
	for _, part := range p.parts {
		if part.tokens == nil {
			dst = append(dst, part.lit...)
			continue
		}
		for _, tok := range part.tokens {
			switch tok {
			case "yyyy", "YYYY":
				// Joda's Y is year-of-era: the calendar year, like y.
				dst = appendPad(dst, t.Year(), 4)
			case "xxxx":
				y, _ := t.ISOWeek()
				dst = appendPad(dst, y, 4)
			case "yy", "YY":
				dst = appendPad(dst, t.Year()%100, 2)
			case "MM":
				dst = appendPad(dst, int(t.Month()), 2)
			case "M":
				dst = strconv.AppendInt(dst, int64(t.Month()), 10)
			case "dd":
				dst = appendPad(dst, t.Day(), 2)
			case "d":
				dst = strconv.AppendInt(dst, int64(t.Day()), 10)
			case "HH":
				dst = appendPad(dst, t.Hour(), 2)
			case "H":
				dst = strconv.AppendInt(dst, int64(t.Hour()), 10)
			case "mm":
				dst = appendPad(dst, t.Minute(), 2)
			case "ww", "w":
				_, w := t.ISOWeek()
				dst = appendPad(dst, w, len(tok))
			default:
				dst = append(dst, tok[1:]...)
			}
		}
	}
	return dst
}

func appendPad(dst []byte, n, width int) []byte {
	var buf [8]byte
	s := strconv.AppendInt(buf[:0], int64(n), 10)
	for i := len(s); i < width; i++ {
		dst = append(dst, '0')
	}
	return append(dst, s...)
}
