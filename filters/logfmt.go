package filters

import (
	"strings"

	"github.com/logweave/logweave/pipeline"
)

// Logfmt reads key=value pairs (logfmt: key=value, key="quoted value", with
// \" and \\ inside quotes) anywhere in the message of a text line (one that
// is not a JSON object) into fields: values as strings, dotted keys as
// objects (http.status=200 → {"http":{"status":"200"}}), only keys matching
// [A-Za-z_][A-Za-z0-9_.-]*, at most MaxPairs of them, none
// over a field the event already has. So `request_id=…` in a text line
// feeds the request id filter exactly as a JSON field does, and the line
// joins its request's trace. The message is kept whole. Access lines the
// nginx filter read are left to it.
type Logfmt struct {
	MaxPairs int // 0: none read
}

// Apply implements Filter.
func (f Logfmt) Apply(e *pipeline.Event) {
	if e.Doc != nil || f.MaxPairs <= 0 || e.Get("event.dataset").Str == "nginx.access" {
		return
	}
	msg := e.Get("message")
	if msg.Str == "" || strings.IndexByte(msg.Str, '=') < 0 {
		return
	}
	max, n := f.MaxPairs, 0
	ParseLogfmt(msg.Str, func(k, v string) bool {
		if e.Get(k).Exists() || strings.HasSuffix(k, ".") || strings.Contains(k, "..") {
			return true
		}
		e.SetString(k, v)
		n++
		return n < max
	})
}

// ParseLogfmt calls pair for each key=value pair in s, in order, until it
// returns false. Words that are not pairs are skipped; a quoted value
// reads to its closing quote (to the end when there is none).
func ParseLogfmt(s string, pair func(key, value string) bool) {
	for i := 0; i < len(s); {
		// A key starts a word: at the start, or after a space.
		if i > 0 && s[i-1] != ' ' && s[i-1] != '\t' || !keyStart(s[i]) {
			i++
			continue
		}
		j := i + 1
		for j < len(s) && keyByte(s[j]) {
			j++
		}
		if j >= len(s) || s[j] != '=' {
			i = j
			continue
		}
		key := s[i:j]
		j++ // past '='
		var val string
		if j < len(s) && s[j] == '"' {
			var b strings.Builder
			k := j + 1
			for ; k < len(s) && s[k] != '"'; k++ {
				if s[k] == '\\' && k+1 < len(s) && (s[k+1] == '"' || s[k+1] == '\\') {
					k++
				}
				b.WriteByte(s[k])
			}
			val, i = b.String(), min(k+1, len(s))
		} else {
			k := j
			for k < len(s) && s[k] != ' ' && s[k] != '\t' {
				k++
			}
			val, i = s[j:k], k
		}
		if !pair(key, val) {
			return
		}
	}
}

func keyStart(c byte) bool { return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func keyByte(c byte) bool {
	return keyStart(c) || c >= '0' && c <= '9' || c == '.' || c == '-'
}
