package filters

import (
	"math"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/logweave/logweave/pipeline"
	"github.com/tidwall/gjson"
)

// TagDateParseFailure marks an event whose time field could not be parsed;
// its @timestamp is then the time it was read (Logstash's date filter tag).
const TagDateParseFailure = "_dateparsefailure"

// Normalise maps common application field names onto the Elastic Common
// Schema so that Kibana works without set-up:
//
//   - @timestamp from @timestamp, timestamp, time or ts (RFC 3339 / ISO 8601,
//     or epoch seconds, milliseconds, microseconds or nanoseconds), written in
//     UTC with millisecond precision; the source field is removed. Without
//     one, the time the line was read.
//   - message from msg or log (renamed) when message is absent.
//   - log.level from level or severity (renamed, lower-cased).
//   - service.name from service when it is a string (renamed).
//
// Renaming rather than copying keeps one type per field name across services,
// which is what avoids Elasticsearch mapping conflicts.
type Normalise struct{}

var timeFields = [...]string{"@timestamp", "timestamp", "time", "ts"}

// Apply implements Filter.
func (n Normalise) Apply(e *pipeline.Event) {
	var f fields
	if e.Doc != nil || e.Edited() { // a text line may have been parsed by a filter (nginx)
		if e.Edited() {
			f = n.lookup(e)
		} else {
			f = n.scan(e)
		}
		if !f.hasMessage {
			if f.msg.Type == gjson.String {
				e.Set("message", rawOf(f.msg))
				e.Delete(f.msgName)
			}
		}
		if !f.hasLevel && (f.level.Type == gjson.String || f.level.Type == gjson.Number) {
			e.SetString("log.level", normLevel(f.level))
			e.Delete(f.levelName)
		}
		if f.service.Type == gjson.String {
			e.Set("service.name", rawOf(f.service))
			e.Delete("service")
		}
	}
	// An earlier filter that read the event's own time (text: the line's
	// head) set e.Time; it wins over any time field, as an @timestamp
	// would, and is not formatted only to be parsed again here.
	preset := e.Time
	e.Time = time.Time{}
	failed := false
	if !preset.IsZero() {
		e.Time = preset
	} else if f.timeName != "" {
		if t, ok := ParseTime(f.time); ok {
			e.Time = t
			if f.timeName != "@timestamp" {
				e.Delete(f.timeName)
			}
		} else {
			failed = true
		}
	}
	if e.Time.IsZero() {
		e.Time = e.ReadAt
		if failed {
			e.AddTag(TagDateParseFailure)
		}
	}
	var buf [40]byte
	b := append(buf[:0], '"')
	b = pipeline.AppendTimestamp(b, e.Time)
	b = append(b, '"')
	e.Set("@timestamp", e.Bytes(b))
}

// fields are what Normalise looks at, found in one pass.
type fields struct {
	hasMessage, hasLevel bool
	msg, level, service  gjson.Result
	msgName, levelName   string
	time                 gjson.Result
	timeName             string
}

func rawOf(r gjson.Result) []byte { return unsafe.Slice(unsafe.StringData(r.Raw), len(r.Raw)) }

// scan finds the fields in one pass over the top-level members (when no
// filter edited the event before).
func (Normalise) scan(e *pipeline.Event) (f fields) {
	msgRank, levelRank, timeRank := 9, 9, 9
	top := e.TopLevel()
	for i := range top {
		m := &top[i]
		switch m.Key {
		case "message":
			f.hasMessage = true
		case "msg", "log":
			rank := 0
			if m.Key == "log" {
				rank = 1
				if len(m.Val) > 0 && m.Val[0] == '{' && gjson.GetBytes(m.Val, "level").Exists() {
					f.hasLevel = true
				}
			}
			if v := m.Value(); v.Type == gjson.String && rank < msgRank {
				f.msg, f.msgName, msgRank = v, m.Key, rank
			}
		case "log.level":
			f.hasLevel = true
		case "level", "severity":
			rank := 0
			if m.Key == "severity" {
				rank = 1
			}
			if rank < levelRank {
				f.level, f.levelName, levelRank = m.Value(), m.Key, rank
			}
		case "service":
			f.service = m.Value()
		case "@timestamp", "timestamp", "time", "ts":
			rank := timeRankOf(m.Key)
			if rank < timeRank {
				f.time, f.timeName, timeRank = m.Value(), m.Key, rank
			}
		}
	}
	return f
}

func timeRankOf(k string) int {
	for i, n := range timeFields {
		if n == k {
			return i
		}
	}
	return 9
}

// lookup finds the fields through Get, which sees earlier filters' edits.
func (Normalise) lookup(e *pipeline.Event) (f fields) {
	f.hasMessage = e.Get("message").Exists()
	for _, name := range [...]string{"msg", "log"} {
		if r := e.Get(name); r.Type == gjson.String {
			f.msg, f.msgName = r, name
			break
		}
	}
	f.hasLevel = e.Get("log.level").Exists()
	for _, name := range [...]string{"level", "severity"} {
		if r := e.Get(name); r.Exists() {
			f.level, f.levelName = r, name
			break
		}
	}
	f.service = e.Get("service")
	for _, name := range timeFields {
		if r := e.Get(name); r.Exists() {
			f.time, f.timeName = r, name
			break
		}
	}
	return f
}

func normLevel(r gjson.Result) string {
	if r.Type == gjson.Number {
		// syslog severities, as GELF and many JSON loggers use
		switch n := r.Int(); {
		case n <= 0:
			return "emergency"
		case n == 1:
			return "alert"
		case n == 2:
			return "critical"
		case n == 3:
			return "error"
		case n == 4:
			return "warning"
		case n == 5:
			return "notice"
		case n == 6:
			return "info"
		default:
			return "debug"
		}
	}
	if l, ok := commonLevel(r.Str); ok {
		return l
	}
	return strings.ToLower(r.Str)
}

var commonLevels = [...]string{"trace", "debug", "info", "notice", "warn", "warning", "error", "critical", "fatal"}

// commonLevel returns the usual level names in lower case without
// allocating (most events have one of them, often upper-case).
func commonLevel(s string) (string, bool) {
	for _, l := range commonLevels {
		if len(s) == len(l) && strings.EqualFold(s, l) {
			return l, true
		}
	}
	return "", false
}

var timeLayouts = [...]string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999Z0700",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999Z0700",
	"2006-01-02 15:04:05.999999999 -0700",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05,999999999Z07:00",
	"2006-01-02 15:04:05,999999999",
	time.RFC1123Z,
	time.RFC1123,
}

// ParseTime reads a time from a JSON value: an RFC 3339 / ISO 8601 string
// (times without a zone are UTC), or an epoch number (or digit string) in
// seconds, milliseconds, microseconds or nanoseconds, told apart by size.
func ParseTime(r gjson.Result) (time.Time, bool) {
	switch r.Type {
	case gjson.Number:
		return epoch(r.Num, r.Raw)
	case gjson.String:
		s := strings.TrimSpace(r.Str)
		if s == "" {
			return time.Time{}, false
		}
		if c := s[0]; c >= '0' && c <= '9' && !strings.ContainsAny(s, "-:") {
			f, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return time.Time{}, false
			}
			return epoch(f, s)
		}
		for _, l := range timeLayouts {
			if t, err := time.Parse(l, s); err == nil {
				return t.UTC(), true
			}
		}
	}
	return time.Time{}, false
}

func epoch(f float64, raw string) (time.Time, bool) {
	if f <= 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		return time.Time{}, false
	}
	// Integers are converted exactly; floats (seconds with a fraction) are
	// rounded to the microsecond.
	if n, err := strconv.ParseInt(raw, 10, 64); err == nil {
		switch {
		case n < 1e11:
			return time.Unix(n, 0).UTC(), true
		case n < 1e14:
			return time.UnixMilli(n).UTC(), true
		case n < 1e17:
			return time.UnixMicro(n).UTC(), true
		default:
			return time.Unix(0, n).UTC(), true
		}
	}
	switch {
	case f < 1e11:
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(math.Round(frac*1e6))*1e3).UTC(), true
	case f < 1e14:
		return time.UnixMicro(int64(math.Round(f * 1e3))).UTC(), true
	case f < 1e17:
		return time.UnixMicro(int64(f)).UTC(), true
	}
	return time.Unix(0, int64(f)).UTC(), true
}
