package pipeline

import (
	"bytes"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// Envelope is how the shipper sends one line to the collector: one JSON
// object per NDJSON line, the raw line as a string plus where it came from.
//
//	{"id":"…","ts":"2026-11-26T00:00:00.123456789Z","host":"node-1","path":"/var/log/app/a.log","offset":1234,"fields":{…},"line":"…"}
//	{"id":"…","ts":"…","host":"node-1","format":"gelf","line":"{\"version\":\"1.1\",…}"}
//
// ts is when the line was read, or, for container runtime logs, the time
// the runtime wrote it; it stands in for @timestamp when the line has none.
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
	// Fields are added to the event unless it has them: a JSON object of
	// dotted keys (e.g. {"stream":"stderr","kubernetes.pod.name":"web-1"}).
	Fields []byte
	// Format says what Line is when it is not a log line: "gelf" is a
	// GELF message the shipper received, mapped by the collector (so the
	// shipper, often held to 100m CPU, only spools and sends it).
	Format string
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
	if len(e.Fields) > 0 {
		dst = append(dst, `,"fields":`...)
		dst = append(dst, e.Fields...)
	}
	if e.Format != "" {
		dst = append(dst, `,"format":`...)
		dst = AppendJSONString(dst, e.Format)
	}
	dst = append(dst, `,"line":`...)
	dst = AppendJSONString(dst, b2s(e.Line))
	return append(dst, '}')
}

// ParseEnvelope decodes one NDJSON line. It reports false when the line is
// not an envelope; the caller then treats the whole line as the log line.
// Line is unescaped into e.Line's storage (reused across calls); the other
// strings are fresh copies.
func ParseEnvelope(b []byte, e *Envelope) bool {
	if len(b) == 0 || b[0] != '{' {
		return false
	}
	var buf [8]Member
	ms := members(buf[:0], b)
	line := e.Line[:0]
	*e = Envelope{}
	found := false
	for _, m := range ms {
		switch m.Key {
		case "line":
			if len(m.Val) >= 2 && m.Val[0] == '"' {
				line = AppendUnescaped(line, m.Val[1:len(m.Val)-1])
				found = true
			}
		case "id":
			e.ID = jsonString(m.Val)
		case "ts":
			e.ReadAt, _ = time.Parse(time.RFC3339Nano, b2s(unquote(m.Val)))
		case "host":
			e.Host = jsonString(m.Val)
		case "path":
			e.Path = jsonString(m.Val)
		case "offset":
			e.Offset, _ = strconv.ParseInt(b2s(m.Val), 10, 64)
		case "fields":
			if len(m.Val) > 0 && m.Val[0] == '{' {
				e.Fields = bytes.Clone(m.Val)
			}
		case "format":
			e.Format = jsonString(m.Val)
		}
	}
	e.Line = line
	return found
}

func unquote(v []byte) []byte {
	if len(v) >= 2 && v[0] == '"' {
		return v[1 : len(v)-1]
	}
	return v
}

// jsonString returns a JSON value as a new Go string.
func jsonString(v []byte) string {
	if len(v) >= 2 && v[0] == '"' {
		return string(AppendUnescaped(nil, v[1:len(v)-1]))
	}
	return string(v)
}

// AppendUnescaped appends the JSON string body s (without quotes), with its
// escapes decoded, to dst. Invalid escapes are kept as they are.
func AppendUnescaped(dst, s []byte) []byte {
	for {
		i := bytes.IndexByte(s, '\\')
		if i < 0 || i+1 >= len(s) {
			return append(dst, s...)
		}
		dst = append(dst, s[:i]...)
		c := s[i+1]
		s = s[i+2:]
		switch c {
		case '"', '\\', '/':
			dst = append(dst, c)
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, n := hex4(s)
			if n == 0 {
				dst = append(dst, '\\', 'u')
				continue
			}
			s = s[n:]
			if utf16.IsSurrogate(r) {
				if len(s) >= 6 && s[0] == '\\' && s[1] == 'u' {
					if r2, n2 := hex4(s[2:]); n2 > 0 {
						if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
							r = d
							s = s[6:]
						} else {
							r = utf8.RuneError
						}
					} else {
						r = utf8.RuneError
					}
				} else {
					r = utf8.RuneError
				}
			}
			dst = utf8.AppendRune(dst, r)
		default:
			dst = append(dst, '\\', c)
		}
	}
}

func hex4(s []byte) (rune, int) {
	if len(s) < 4 {
		return 0, 0
	}
	var r rune
	for _, c := range s[:4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, 0
		}
	}
	return r, 4
}
