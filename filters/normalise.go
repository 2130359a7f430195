package filters

import (
	"bytes"
	"math"
	"strconv"
	"strings"
	"time"

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
func (Normalise) Apply(e *pipeline.Event) {
	if e.Doc != nil {
		if !e.Get("message").Exists() {
			for _, f := range [...]string{"msg", "log"} {
				if r := e.Get(f); r.Type == gjson.String {
					e.Rename(f, "message")
					break
				}
			}
		}
		if !e.Get("log.level").Exists() {
			for _, f := range [...]string{"level", "severity"} {
				r := e.Get(f)
				if r.Type == gjson.String || r.Type == gjson.Number {
					e.SetString("log.level", normLevel(r))
					e.Delete(f)
					break
				}
			}
		}
		if r := e.Get("service"); r.Type == gjson.String {
			e.Rename("service", "service.name")
		}
	}
	e.Time = time.Time{}
	failed := false
	if e.Doc != nil {
		for _, f := range timeFields {
			r := e.Get(f)
			if !r.Exists() {
				continue
			}
			if t, ok := ParseTime(r); ok {
				e.Time = t
				if f != "@timestamp" {
					e.Delete(f)
				}
			} else {
				failed = true
			}
			break
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
	b = e.Time.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z")
	b = append(b, '"')
	e.Set("@timestamp", bytes.Clone(b))
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
	return strings.ToLower(r.Str)
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
