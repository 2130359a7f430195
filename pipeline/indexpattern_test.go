package pipeline_test

import (
	"testing"
	"time"

	"github.com/logweave/logweave/pipeline"
)

func TestIndexPattern(t *testing.T) {
	ts := time.Date(2026, 12, 31, 23, 59, 59, 0, time.FixedZone("x", -3600)) // 2027-01-01T00:59:59Z
	cases := map[string]string{
		"logs-%{+yyyy.MM.dd}":          "logs-2027.01.01",
		"microservices-%{+YYYY.MM.dd}": "microservices-2027.01.01",
		"logs-%{+yyyy.MM}":             "logs-2027.01",
		"h-%{+yyyy.MM.dd.HH}":          "h-2027.01.01.00",
		"static":                       "static",
		"w-%{+xxxx.ww}":                "w-2026.53",
	}
	for pat, want := range cases {
		p, err := pipeline.ParseIndexPattern(pat)
		if err != nil {
			t.Fatalf("%s: %v", pat, err)
		}
		if got := p.Format(ts); got != want {
			t.Errorf("%s: got %s want %s", pat, got, want)
		}
	}
	for _, bad := range []string{"", "logs-%{+yyyy.QQ}", "logs-%{+yyyy", "logs-%{host}"} {
		if _, err := pipeline.ParseIndexPattern(bad); err == nil {
			t.Errorf("%q: want error", bad)
		}
	}
}
