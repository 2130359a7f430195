package syslog

import (
	"bytes"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Message is one syslog message, parsed.
type Message struct {
	Priority       int // -1: none
	Version        int // 1 for RFC 5424, 0 for RFC 3164
	Timestamp      time.Time
	Hostname       string
	AppName        string
	ProcID         string
	MsgID          string
	StructuredData map[string]map[string]string // SD-ID → params (RFC 5424)
	Msg            string
}

// Parse reads an RFC 5424 or RFC 3164 message (told apart by the "1 "
// after the priority), leniently as senders write them: a missing
// priority, timestamp or hostname is left empty, and what cannot be read
// as a header stays in Msg. now dates RFC 3164 timestamps, which have no
// year (the year that puts the time nearest to now) and no zone (loc).
// ok is false when the text is not syslog at all (no <PRI>): Msg is then
// the whole text.
func Parse(b []byte, now time.Time, loc *time.Location) (m Message, ok bool) {
	m.Priority = -1
	s := string(bytes.TrimRight(b, "\r\n\x00"))
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	rest, pri, ok := priority(s)
	if !ok {
		m.Msg = s
		return m, false
	}
	m.Priority = pri
	if len(rest) >= 2 && rest[0] == '1' && rest[1] == ' ' {
		m.Version = 1
		parse5424(&m, rest[2:])
		return m, true
	}
	parse3164(&m, rest, now, loc)
	return m, true
}

func priority(s string) (rest string, pri int, ok bool) {
	if len(s) < 3 || s[0] != '<' {
		return s, 0, false
	}
	end := strings.IndexByte(s[:min(len(s), 5)], '>')
	if end < 2 {
		return s, 0, false
	}
	n, err := strconv.Atoi(s[1:end])
	if err != nil || n < 0 || n > 191 || (end > 2 && s[1] == '0') {
		return s, 0, false
	}
	return s[end+1:], n, true
}

// field takes the next space-ended field ("-" is nil).
func field(s string) (f, rest string) {
	i := strings.IndexByte(s, ' ')
	if i < 0 {
		f, rest = s, ""
	} else {
		f, rest = s[:i], s[i+1:]
	}
	if f == "-" {
		f = ""
	}
	return f, rest
}

func parse5424(m *Message, s string) {
	var ts string
	ts, s = field(s)
	if ts != "" {
		if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
			m.Timestamp = t
		}
	}
	m.Hostname, s = field(s)
	m.AppName, s = field(s)
	m.ProcID, s = field(s)
	m.MsgID, s = field(s)
	if strings.HasPrefix(s, "-") {
		s = strings.TrimPrefix(strings.TrimPrefix(s, "-"), " ")
	} else if strings.HasPrefix(s, "[") {
		m.StructuredData, s = structuredData(s)
	}
	m.Msg = strings.TrimPrefix(s, "\uFEFF") // the BOM RFC 5424 allows before UTF-8
}

// structuredData reads [id k="v" ...][id2 ...]: \" \\ \] escape inside
// values. Malformed data ends it; the rest stays the message.
func structuredData(s string) (map[string]map[string]string, string) {
	sd := map[string]map[string]string{}
	for len(s) > 0 && s[0] == '[' {
		i := 1
		j := i
		for j < len(s) && s[j] != ' ' && s[j] != ']' {
			j++
		}
		if j >= len(s) || j == i {
			return sd, s
		}
		id := s[i:j]
		params := map[string]string{}
		i = j
		for i < len(s) && s[i] == ' ' {
			i++
			k := i
			for k < len(s) && s[k] != '=' && s[k] != ' ' && s[k] != ']' {
				k++
			}
			if k+1 >= len(s) || s[k] != '=' || s[k+1] != '"' {
				return sd, s
			}
			name := s[i:k]
			var v strings.Builder
			k += 2
			for ; k < len(s) && s[k] != '"'; k++ {
				if s[k] == '\\' && k+1 < len(s) && (s[k+1] == '"' || s[k+1] == '\\' || s[k+1] == ']') {
					k++
				}
				v.WriteByte(s[k])
			}
			if k >= len(s) {
				return sd, s
			}
			params[name] = v.String()
			i = k + 1
		}
		if i >= len(s) || s[i] != ']' {
			return sd, s
		}
		sd[id] = params
		s = s[i+1:]
	}
	return sd, strings.TrimPrefix(s, " ")
}

// parse3164: "Mmm dd hh:mm:ss HOSTNAME TAG[PID]: MSG", each part optional
// as senders go (Docker's unix-socket format has no hostname).
func parse3164(m *Message, s string, now time.Time, loc *time.Location) {
	if len(s) >= 15 && s[3] == ' ' && s[6] == ' ' && s[9] == ':' && s[12] == ':' {
		if t, err := time.ParseInLocation(time.Stamp, s[:15], loc); err == nil {
			m.Timestamp = withYear(t, now)
			s = strings.TrimPrefix(s[15:], " ")
		}
	} else if ts, rest := field(s); len(ts) > 19 && ts[4] == '-' && ts[10] == 'T' {
		if t, err := time.Parse(time.RFC3339Nano, ts); err == nil { // rsyslog's high-precision form
			m.Timestamp, s = t, rest
		}
	}
	// HOSTNAME unless this word is already the tag (ends with ':' or '[').
	if w, rest := field(s); w != "" && !strings.ContainsAny(w, ":[") && rest != "" {
		if t, _ := field(rest); strings.HasSuffix(t, ":") || strings.Contains(t, "[") {
			m.Hostname, s = w, rest
		}
	}
	// TAG[PID]: at most 48 characters of tag, as RFC 3164 says 32.
	if i := strings.IndexByte(s, ':'); i > 0 && i <= 64 && !strings.ContainsAny(s[:i], " ") {
		tag := s[:i]
		if p := strings.IndexByte(tag, '['); p > 0 && strings.HasSuffix(tag, "]") {
			m.ProcID = tag[p+1 : len(tag)-1]
			tag = tag[:p]
		}
		m.AppName = tag
		s = strings.TrimPrefix(s[i+1:], " ")
	}
	m.Msg = s
}

// withYear gives a year-less time the year that puts it nearest to now.
func withYear(t, now time.Time) time.Time {
	best := t.AddDate(now.Year(), 0, 0)
	for _, y := range []int{now.Year() - 1, now.Year() + 1} {
		c := t.AddDate(y, 0, 0)
		if d, bd := c.Sub(now).Abs(), best.Sub(now).Abs(); d < bd {
			best = c
		}
	}
	return best
}

var facilities = [...]string{"kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
	"ftp", "ntp", "security", "console", "solaris-cron", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"}

var severities = [...]string{"Emergency", "Alert", "Critical", "Error", "Warning", "Notice", "Informational", "Debug"}

// levels are the log.level words of the severities.
var levels = [...]string{"emergency", "alert", "critical", "error", "warn", "notice", "info", "debug"}
