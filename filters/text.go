package filters

import (
	"fmt"
	"strings"
	"time"

	"github.com/logweave/logweave/pipeline"
)

// Text reads the head of a text line (one that is not a JSON object and
// that no other filter understood): a leading timestamp becomes
// @timestamp, a level word right after it log.level, a bracketed word
// after that log.logger, and the rest stays the message:
//
//	2024-05-01 12:00:00.278 WARN  [gateway] connection pool exhausted ...
//	[2024-05-01T12:00:00,278+02:00] [error] [payments] card declined
//	Jan  2 15:04:05 INFO started
//	[02/Jan/2006:15:04:05 -0700] GET /x
//	1714564800.278 DEBUG cache miss
//
// Timestamps: `2006-01-02 15:04:05` with `T` or a space, `.` or `,`
// fractions, and a zone (`Z`, `+07:00`, `+0700`) or none (then Location,
// UTC by default); syslog's `Jan _2 15:04:05` (the latest year that puts it
// at most a week after the line was read); the common log format's `02/Jan/2006:15:04:05 -0700`;
// epoch seconds (10 digits) or milliseconds (13), with a fraction. Any of
// them may be in brackets. Levels: TRACE, DEBUG, INFO, NOTICE, WARN,
// WARNING, ERROR, FATAL, CRITICAL, in any case, bracketed or not
// (lower-cased). A line whose head is neither a timestamp nor a level is
// left alone; one that is is no longer a parse failure (its tag
// _jsonparsefailure is removed) unless it looked like JSON.
type Text struct {
	Location *time.Location // of timestamps without a zone; nil: UTC
}

// TextConfig is the collector's `filters.text` section.
type TextConfig struct {
	// Timezone of leading timestamps without a zone (default UTC).
	Timezone string `yaml:"timezone"`
	// MaxPairs bounds the key=value pairs read from one line (default 32).
	MaxPairs int `yaml:"max_pairs"`
}

// DefaultTextConfig: UTC, 32 pairs.
func DefaultTextConfig() TextConfig { return TextConfig{Timezone: "UTC", MaxPairs: 32} }

// Validate checks the section.
func (c TextConfig) Validate(prefix string) error {
	if _, err := time.LoadLocation(c.Timezone); err != nil {
		return fmt.Errorf("%s.timezone: %w", prefix, err)
	}
	if c.MaxPairs < 0 || c.MaxPairs > 1000 {
		return fmt.Errorf("%s.max_pairs: %d, want 0 (none read) to 1000", prefix, c.MaxPairs)
	}
	return nil
}

// Apply implements Filter.
func (t Text) Apply(e *pipeline.Event) {
	if e.Doc != nil || !e.HasTag(TagJSONParseFailure) {
		return // a JSON object, or understood by another filter
	}
	line := strings.TrimRight(string(e.Line), "\r\n")
	h, ok := ParseTextHead(line, t.Location, e.ReadAt)
	if !ok {
		return
	}
	e.Time = h.Time // normalise writes @timestamp from it
	if h.Level != "" {
		e.SetString("log.level", h.Level)
	}
	if h.Logger != "" {
		e.SetString("log.logger", h.Logger)
	}
	e.SetString("message", h.Message)
	// It starts with a timestamp or a level: it never looked like JSON.
	e.RemoveTag(TagJSONParseFailure)
}

// TextHead is what ParseTextHead found at the start of a line.
type TextHead struct {
	Time    time.Time // zero: none
	Level   string    // lower case; "": none
	Logger  string
	Message string // the rest
}

// ParseTextHead reads a leading timestamp, level and bracketed logger (see
// Text). ok is false when the line starts with neither a timestamp nor a
// level. now places a syslog timestamp, which has no year.
func ParseTextHead(line string, loc *time.Location, now time.Time) (h TextHead, ok bool) {
	if loc == nil {
		loc = time.UTC
	}
	s := strings.TrimLeft(line, " \t")
	if ts, rest, found := leadingTime(s, loc, now); found {
		h.Time, s = ts, rest
	}
	s = strings.TrimLeft(s, " \t")
	if lv, rest, marked, found := leadingLevel(s); found {
		rest = strings.TrimLeft(rest, " \t")
		// Without a timestamp before it, a bare word ("Error opening
		// file") is the message's first word: a level only when marked
		// (bracketed, or followed by a colon) or followed by a bracket
		// or a dash.
		if !h.Time.IsZero() || marked || rest != "" && (rest[0] == '[' || rest[0] == '-' || rest[0] == '|') {
			h.Level, s = lv, rest
		}
	}
	if h.Time.IsZero() && h.Level == "" {
		return TextHead{}, false
	}
	if name, rest, found := bracketed(s); found && validLogger(name) {
		h.Logger, s = name, rest
	}
	s = strings.TrimLeft(s, " \t")
	for _, sep := range []string{"- ", ": ", "| "} { // "INFO - msg", "ERROR: msg"
		if strings.HasPrefix(s, sep) {
			s = s[len(sep):]
			break
		}
	}
	h.Message = strings.TrimSpace(s)
	return h, true
}

// bracketed cuts "[x] rest" into x and rest.
func bracketed(s string) (inner, rest string, ok bool) {
	if s == "" || s[0] != '[' {
		return "", s, false
	}
	i := strings.IndexByte(s, ']')
	if i < 0 {
		return "", s, false
	}
	return s[1:i], s[i+1:], true
}

func validLogger(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c == '"' || c == '=' {
			return false
		}
	}
	return true
}

var levelWords = map[string]string{
	"trace": "trace", "debug": "debug", "info": "info", "notice": "notice",
	"warn": "warn", "warning": "warning", "error": "error", "err": "error",
	"fatal": "fatal", "critical": "critical", "crit": "critical",
}

// leadingLevel reads a level word, bare or in brackets, ending at a space,
// a colon or the end; marked says it was bracketed or followed by a colon.
func leadingLevel(s string) (level, rest string, marked, ok bool) {
	var word, after string
	if inner, r, found := bracketed(s); found {
		word, after, marked = strings.TrimSpace(inner), r, true
	} else {
		i := 0
		for i < len(s) && (s[i] >= 'a' && s[i] <= 'z' || s[i] >= 'A' && s[i] <= 'Z') {
			i++
		}
		word, after = s[:i], s[i:]
		if after != "" && after[0] != ' ' && after[0] != '\t' && after[0] != ':' {
			return "", s, false, false
		}
		if strings.HasPrefix(after, ":") {
			after, marked = after[1:], true
		}
	}
	if len(word) < 3 || len(word) > 8 {
		return "", s, false, false
	}
	lv, known := levelWords[strings.ToLower(word)]
	if !known {
		return "", s, false, false
	}
	return lv, after, marked, true
}

// leadingTime reads a timestamp at the start of s, bare or in brackets.
func leadingTime(s string, loc *time.Location, now time.Time) (time.Time, string, bool) {
	if inner, rest, ok := bracketed(s); ok {
		if t, r, ok := bareTime(inner, loc, now); ok && strings.TrimSpace(r) == "" {
			return t, rest, true
		}
		return time.Time{}, s, false
	}
	return bareTime(s, loc, now)
}

func bareTime(s string, loc *time.Location, now time.Time) (time.Time, string, bool) {
	if t, rest, ok := isoTime(s, loc); ok {
		return t, rest, true
	}
	if t, rest, ok := clfTime(s); ok {
		return t, rest, true
	}
	if t, rest, ok := syslogTime(s, loc, now); ok {
		return t, rest, true
	}
	return epochTime(s)
}

// leadingInt reads the n digits at the start of s as a number.
func leadingInt(s string, n int) (int, bool) {
	if len(s) < n {
		return 0, false
	}
	v := 0
	for i := 0; i < n; i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, true
}

// fraction reads [.,]digits: nanoseconds and the length read.
func fraction(s string) (int, int) {
	if len(s) < 2 || s[0] != '.' && s[0] != ',' || s[1] < '0' || s[1] > '9' {
		return 0, 0
	}
	ns, scale, i := 0, 100_000_000, 1
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		ns += int(s[i]-'0') * scale
		scale /= 10
	}
	return ns, i
}

// zone reads Z, ±hh:mm or ±hhmm (optionally after one space).
func zone(s string) (*time.Location, int) {
	off := 0
	if len(s) > 1 && s[0] == ' ' && (s[1] == '+' || s[1] == '-') {
		off = 1
	}
	z := s[off:]
	if z != "" && z[0] == 'Z' {
		return time.UTC, off + 1
	}
	if len(z) < 5 || z[0] != '+' && z[0] != '-' {
		return nil, 0
	}
	hh, ok := leadingInt(z[1:], 2)
	if !ok {
		return nil, 0
	}
	n, mmAt := 5, 3
	if z[3] == ':' {
		n, mmAt = 6, 4
	}
	mm, ok := leadingInt(z[mmAt:], 2)
	if !ok || hh > 14 || mm > 59 {
		return nil, 0
	}
	secs := (hh*60 + mm) * 60
	if z[0] == '-' {
		secs = -secs
	}
	return time.FixedZone("", secs), off + n
}

// isoTime: 2006-01-02[T ]15:04:05[.,frac][zone].
func isoTime(s string, loc *time.Location) (time.Time, string, bool) {
	if len(s) < 19 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != ' ') || s[13] != ':' || s[16] != ':' {
		return time.Time{}, s, false
	}
	y, ok1 := leadingInt(s, 4)
	mo, ok2 := leadingInt(s[5:], 2)
	d, ok3 := leadingInt(s[8:], 2)
	h, ok4 := leadingInt(s[11:], 2)
	mi, ok5 := leadingInt(s[14:], 2)
	se, ok6 := leadingInt(s[17:], 2)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60 {
		return time.Time{}, s, false
	}
	rest := s[19:]
	ns, n := fraction(rest)
	rest = rest[n:]
	if z, n := zone(rest); z != nil {
		loc, rest = z, rest[n:]
	}
	return time.Date(y, time.Month(mo), d, h, mi, se, ns, loc).UTC(), rest, true
}

var months = map[string]time.Month{"Jan": 1, "Feb": 2, "Mar": 3, "Apr": 4, "May": 5, "Jun": 6, "Jul": 7, "Aug": 8, "Sep": 9, "Oct": 10, "Nov": 11, "Dec": 12}

// clfTime: 02/Jan/2006:15:04:05 -0700.
func clfTime(s string) (time.Time, string, bool) {
	if len(s) < 26 || s[2] != '/' || s[6] != '/' || s[11] != ':' {
		return time.Time{}, s, false
	}
	t, err := time.Parse("02/Jan/2006:15:04:05 -0700", s[:26])
	if err != nil {
		return time.Time{}, s, false
	}
	return t.UTC(), s[26:], true
}

// syslogTime: Jan _2 15:04:05[.frac], the year nearest to now.
func syslogTime(s string, loc *time.Location, now time.Time) (time.Time, string, bool) {
	if len(s) < 15 || s[3] != ' ' || s[6] != ' ' || s[9] != ':' || s[12] != ':' {
		return time.Time{}, s, false
	}
	mo, ok := months[s[:3]]
	if !ok {
		return time.Time{}, s, false
	}
	day := strings.TrimLeft(s[4:6], " ")
	d, ok1 := leadingInt(day, len(day))
	h, ok2 := leadingInt(s[7:], 2)
	mi, ok3 := leadingInt(s[10:], 2)
	se, ok4 := leadingInt(s[13:], 2)
	if !(ok1 && ok2 && ok3 && ok4) || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60 {
		return time.Time{}, s, false
	}
	rest := s[15:]
	ns, n := fraction(rest)
	rest = rest[n:]
	if now.IsZero() {
		now = time.Now()
	}
	// The latest year that does not put it more than a week after now:
	// logs come from the past (Dec 31 read on Jan 1 is last year's).
	var best time.Time
	for _, y := range []int{now.Year() - 1, now.Year(), now.Year() + 1} {
		if t := time.Date(y, mo, d, h, mi, se, ns, loc); !t.After(now.Add(7 * 24 * time.Hour)) {
			best = t
		}
	}
	return best.UTC(), rest, true
}

// epochTime: 10 digits of seconds or 13 of milliseconds, an optional
// fraction, then a space or the end; between 2001 and 2286.
func epochTime(s string) (time.Time, string, bool) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i != 10 && i != 13 {
		return time.Time{}, s, false
	}
	v, _ := leadingInt(s, i)
	ns, n := fraction(s[i:])
	rest := s[i+n:]
	if rest != "" && rest[0] != ' ' && rest[0] != '\t' && rest[0] != ']' {
		return time.Time{}, s, false
	}
	var t time.Time
	if i == 10 {
		t = time.Unix(int64(v), int64(ns))
	} else {
		t = time.UnixMilli(int64(v)).Add(time.Duration(ns / 1000))
	}
	if t.Year() < 2001 {
		return time.Time{}, s, false
	}
	return t.UTC(), rest, true
}
