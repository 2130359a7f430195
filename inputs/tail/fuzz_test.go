package tail

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

// hasDupKey: a top-level key twice (readers differ on which one wins).
func hasDupKey(line []byte) bool {
	seen := map[string]bool{}
	dup := false
	gjson.ParseBytes(line).ForEach(func(k, _ gjson.Result) bool {
		dup = dup || seen[k.String()]
		seen[k.String()] = true
		return !dup
	})
	return dup
}

// FuzzDecode: docker and CRI lines of any shape decode or fall back to raw,
// never panic; a decoded docker line's text is what the JSON said.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"log":"hello\n","stream":"stdout","time":"2026-11-26T10:00:00.123456789Z"}`))
	f.Add([]byte(`{"log":"part","stream":"stderr","time":"bad"}`))
	f.Add([]byte("2026-11-26T10:00:00.000000001Z stdout P hello "))
	f.Add([]byte("2026-11-26T10:00:00Z stderr F"))
	f.Add([]byte("garbage"))
	f.Add([]byte(`{"log":"caf\u00e9 \"quoted\" \\ tab\t\r\n","stream":"stderr","time":"2026-11-26T10:00:00Z"}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		var byShape record
		var byShapeOK bool
		for _, format := range []string{FormatDocker, FormatCRI} {
			r, ok := decode(format, line)
			if ok && format == FormatCRI && len(r.text) > len(line) {
				t.Fatalf("cri text longer than the line")
			}
			if ok {
				byShape, byShapeOK = r, true
			}
		}
		// A docker line decodes to what encoding/json-compatible readers
		// (gjson) say its "log" is.
		if r, ok := decode(FormatDocker, line); ok {
			want := gjson.GetBytes(line, "log")
			w := strings.TrimSuffix(strings.TrimSuffix(want.String(), "\n"), "\r")
			if want.Type == gjson.String && utf8.Valid(line) && !hasDupKey(line) && string(r.text) != w {
				t.Fatalf("docker %q: text %q, gjson says %q", line, r.text, w)
			}
		}
		// A line has at most one of the two shapes; auto finds it.
		r, ok := decode(FormatAuto, line)
		if ok != byShapeOK || string(r.text) != string(byShape.text) || r.stream != byShape.stream || r.partial != byShape.partial {
			t.Fatalf("auto decoded %q as %+v %v, want %+v %v", line, r, ok, byShape, byShapeOK)
		}
		PathFields(string(line))
	})
}
