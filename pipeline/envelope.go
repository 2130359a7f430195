package pipeline

import (
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"
)

// Envelope is how the shipper sends one line to the collector: one JSON
// object per NDJSON line, the raw line as a string plus where it came from.
//
//	{"id":"…","ts":"2026-11-26T00:00:00.123456789Z","host":"node-1","path":"/var/log/app/a.log","offset":1234,"line":"…"}
//
// id is deterministic (host, file identity, offset), so a batch sent twice
// indexes as one document each. A POSTed line that is not an envelope (no
// "line" string) is taken whole as the log line.
type Envelope struct {
	ID     string
	ReadAt time.Time
	Host   string
	Path   string
	Offset int64
	Line   []byte
}

// AppendJSON appends e as one JSON object (no newline).
func (e *Envelope) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"id":`...)
	dst = AppendJSONString(dst, e.ID)
	dst = append(dst, `,"ts":"`...)
	dst = e.ReadAt.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, '"')
	if e.Host != "" {
		dst = append(dst, `,"host":`...)
		dst = AppendJSONString(dst, e.Host)
	}
	if e.Path != "" {
		dst = append(dst, `,"path":`...)
		dst = AppendJSONString(dst, e.Path)
		dst = append(dst, `,"offset":`...)
		dst = strconv.AppendInt(dst, e.Offset, 10)
	}
	dst = append(dst, `,"line":`...)
	dst = AppendJSONString(dst, b2s(e.Line))
	return append(dst, '}')
}

// ParseEnvelope decodes one NDJSON line. It reports false when the line is
// not an envelope; the caller then treats the whole line as the log line.
// Line is a fresh copy (unescaped); the other strings too.
func ParseEnvelope(b []byte, e *Envelope) bool {
	if len(b) == 0 || b[0] != '{' {
		return false
	}
	*e = Envelope{}
	found := false
	gjson.Parse(b2s(b)).ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "line":
			if v.Type == gjson.String {
				e.Line = []byte(v.Str)
				found = true
			}
		case "id":
			e.ID = strings.Clone(v.String())
		case "ts":
			e.ReadAt, _ = time.Parse(time.RFC3339Nano, v.Str)
		case "host":
			e.Host = strings.Clone(v.String())
		case "path":
			e.Path = strings.Clone(v.String())
		case "offset":
			e.Offset = v.Int()
		}
		return true
	})
	return found
}
