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
// object) is indexed with its text and _jsonparsefailure, not as an empty
// message.
func TestGELFMalformedJSONKeepsItsText(t *testing.T) {
	cfg := testConfig(t)
	cfg.GELF.Listen = "127.0.0.1:0"
	cfg.Correlation.TracesIndex = ""
	c, _ := start(t, cfg)
	conn, err := net.Dial("udp", c.GELFAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, m := range []string{`{not json at all}`, `{"version":"1.1","host":"h","short_message":"cut off`} {
		conn.Write([]byte(m))
	}
	eventually(t, 10*time.Second, "both indexed", func() bool { return c.Indexed() >= 2 })
	var all string
	names, _ := filepath.Glob(filepath.Join(cfg.FileOutput.Path, "logs-*.ndjson"))
	for _, n := range names {
		b, _ := os.ReadFile(n)
		all += string(b)
	}
	for _, want := range []string{`not json at all`, `cut off`, `_jsonparsefailure`} {
		if !strings.Contains(all, want) {
			t.Fatalf("output lacks %q:\n%s", want, all)
		}
	}
}
