package collector_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/logweave/logweave/internal/gelftest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/tidwall/gjson"
)

// A burst of GELF over UDP faster than the collector stores it: the
// receiver waits for room instead of dropping, the socket buffer absorbs
// the rest, and every datagram is delivered.
func TestGELFUDPBurstLosesNothing(t *testing.T) {
	cfg := testConfig(t)
	cfg.GELF.Listen = "127.0.0.1:0"
	cfg.Correlation.TracesIndex = ""
	c, _ := start(t, cfg)
	total := 0
	for _, b := range []struct {
		n int
		d time.Duration
	}{{20000, 200 * time.Millisecond}, {50000, 500 * time.Millisecond}} {
		if err := gelftest.SendBurst(c.GELFAddr(), total, b.n, b.d); err != nil {
			t.Fatal(err)
		}
		total += b.n
		eventually(t, 60*time.Second, fmt.Sprintf("%d of %d delivered", c.Indexed(), total), func() bool { return c.Indexed() >= int64(total) })
	}
	seen := readOutput(t, cfg.FileOutput.Path)
	if len(seen) != total {
		t.Fatalf("%d distinct messages written, want %d", len(seen), total)
	}
}

// A GELF message that is not valid JSON (`{not json at all}`, a cut-off
// object) is indexed with its text and _gelfparsefailure, not as an empty
// message.
func TestGELFMalformedJSONKeepsItsText(t *testing.T) {
	cfg := testConfig(t)
	cfg.GELF.Listen = "127.0.0.1:0"
	cfg.Correlation.TracesIndex = ""
	c, _ := start(t, cfg)
	before := metricValue(t, "logweave_gelf_parse_failures_total")
	receivedBefore := metricValue(t, "logweave_events_received_total", "input=gelf")
	outBefore := metricValue(t, "logweave_output_events_total", "output=file")
	conn, err := net.Dial("udp", c.GELFAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, m := range []string{`{not json at all}`, `{"version":"1.1","host":"h","short_message":"cut off`} {
		conn.Write([]byte(m))
	}
	eventually(t, 10*time.Second, "both indexed", func() bool { return c.Indexed() >= 2 })
	if n := metricValue(t, "logweave_gelf_parse_failures_total") - before; n != 2 {
		t.Errorf("logweave_gelf_parse_failures_total rose by %v, want 2", n)
	}
	if n := metricValue(t, "logweave_events_received_total", "input=gelf") - receivedBefore; n != 2 {
		t.Errorf("logweave_events_received_total{input=gelf} rose by %v, want 2", n)
	}
	if n := metricValue(t, "logweave_output_events_total", "output=file") - outBefore; n != 2 {
		t.Errorf("logweave_output_events_total{output=file} rose by %v, want 2", n)
	}
	got := map[string]string{}
	names, _ := filepath.Glob(filepath.Join(cfg.FileOutput.Path, "logs-*.ndjson"))
	for _, n := range names {
		b, _ := os.ReadFile(n)
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			got[gjson.Get(l, "message").String()] = gjson.Get(l, "tags").Raw
		}
	}
	for _, m := range []string{`{not json at all}`, `{"version":"1.1","host":"h","short_message":"cut off`} {
		if tags, ok := got[m]; !ok || tags != `["_gelfparsefailure"]` {
			t.Errorf("message %q: indexed %v with tags %s; want its whole text tagged [\"_gelfparsefailure\"] (all: %v)", m, ok, tags, got)
		}
	}
}

// metricValue is the sum of a metric's series in the default registry,
// of those with every label given as "name=value".
func metricValue(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for _, l := range labels {
				k, v, _ := strings.Cut(l, "=")
				if have[k] != v {
					continue series
				}
			}
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}
