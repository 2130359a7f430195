package tail

import "testing"

// BenchmarkDecode: one container log line unwrapped, per format; auto
// (what the DaemonSet reads /var/log/pods with) against the format named.
func BenchmarkDecode(b *testing.B) {
	app := `{"time":"2026-11-26T10:15:00.123Z","level":"INFO","service":"payment","msg":"charged card 1234","request_id":"0123456789abcdef0123456789abcdef","amount":42.5}`
	docker := []byte(`{"log":"` + jsonEscape(app) + `\n","stream":"stdout","time":"2026-11-26T10:15:00.123456789Z"}`)
	cri := []byte("2026-11-26T10:15:00.123456789Z stdout F " + app)
	for _, c := range []struct {
		name, format string
		line         []byte
	}{
		{"docker", FormatDocker, docker}, {"auto-docker", FormatAuto, docker},
		{"cri", FormatCRI, cri}, {"auto-cri", FormatAuto, cri},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.line)))
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := decode(c.format, c.line); !ok {
					b.Fatal("not decoded")
				}
			}
		})
	}
}

func jsonEscape(s string) string {
	out := make([]byte, 0, len(s)+16)
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			out = append(out, '\\')
		}
		out = append(out, s[i])
	}
	return string(out)
}
