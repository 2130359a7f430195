package tail

import (
	"testing"
)

// FuzzDecode: docker and CRI lines of any shape decode or fall back to raw,
// never panic; a decoded docker line's text is what the JSON said.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"log":"hello\n","stream":"stdout","time":"2026-11-26T10:00:00.123456789Z"}`))
	f.Add([]byte(`{"log":"part","stream":"stderr","time":"bad"}`))
	f.Add([]byte("2026-11-26T10:00:00.000000001Z stdout P hello "))
	f.Add([]byte("2026-11-26T10:00:00Z stderr F"))
	f.Add([]byte("garbage"))
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
		// A line has at most one of the two shapes; auto finds it.
		r, ok := decode(FormatAuto, line)
		if ok != byShapeOK || string(r.text) != string(byShape.text) || r.stream != byShape.stream || r.partial != byShape.partial {
			t.Fatalf("auto decoded %q as %+v %v, want %+v %v", line, r, ok, byShape, byShapeOK)
		}
		PathFields(string(line))
	})
}
