package pipeline_test

import (
	"math/rand/v2"
	"sync"
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

// Name, which reuses the name it gave last within a minute, gives what
// Format gives: across minutes, hours, days and years, before 1970, out of
// order, and from several goroutines at once.
func TestIndexPatternNameIsFormat(t *testing.T) {
	p, err := pipeline.ParseIndexPattern("logs-%{+yyyy.MM.dd.HH}-%{+mm}-w%{+ww}")
	if err != nil {
		t.Fatal(err)
	}
	base := []time.Time{time.Date(2026, 12, 31, 23, 59, 58, 0, time.UTC), time.Date(1969, 12, 31, 23, 59, 59, 500, time.UTC),
		time.Date(1969, 12, 31, 23, 58, 0, 0, time.FixedZone("x", 3600)), time.Unix(0, 0)}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(1, uint64(g)))
			for i := range 20000 {
				ts := base[(g+i)%len(base)].Add(time.Duration(rng.Int64N(int64(3*time.Minute))) - 90*time.Second)
				if got, want := p.Name(ts), p.Format(ts); got != want {
					t.Errorf("Name(%v) = %q, Format %q", ts, got, want)
					return
				}
			}
		}()
	}
	wg.Wait()
}
