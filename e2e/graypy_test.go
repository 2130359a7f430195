package e2e

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/logweave/logweave/internal/estest"
)

// graypy is what Python services log GELF with. Its UDP handler compresses
// with zlib and chunks what does not fit a datagram; its TCP handler frames
// with a null byte. Debian's python3-graypy is installed by .ci/run.
const graypySender = `
import logging, os, sys, graypy
host, port = sys.argv[1], int(sys.argv[2])
log = logging.getLogger("payments")
log.setLevel(logging.DEBUG)
udp = graypy.GELFUDPHandler(host, port, extra_fields=True)  # zlib, 1420-byte chunks
tcp = graypy.GELFTCPHandler(host, port, extra_fields=True)
for i in range(100):
    h = udp if i % 2 == 0 else tcp
    log.addHandler(h)
    big = " " + os.urandom(3000).hex() if i % 10 == 0 else ""  # does not compress into one datagram
    log.warning("payment %d captured%s", i, big, extra={"request_id": "req-%d" % (i // 4), "seq": i})
    log.removeHandler(h)
udp.close(); tcp.close()
`

func TestGraypyThroughShipper(t *testing.T) {
	if exec.Command("/usr/bin/python3", "-c", "import graypy").Run() != nil {
		t.Skip("Debian's python3-graypy is not installed (.ci/run installs it)")
	}
	dir := t.TempDir()
	es := estest.New()
	defer es.Close()
	col := startCollector(t, dir, es.URL)
	defer stopCollector(t, col)
	sh, gelfAddr := startGELFShipper(t, dir, col.Addr())
	defer sh.stop(t)

	host, port, _ := strings.Cut(gelfAddr, ":")
	if out, err := exec.Command("/usr/bin/python3", "-c", graypySender, host, port).CombinedOutput(); err != nil {
		t.Fatalf("graypy: %v\n%s", err, out)
	}
	eventually(t, 30*time.Second, "graypy's 100 messages indexed", func() bool { return es.Count("logs-*") >= 100 })
	time.Sleep(300 * time.Millisecond)
	if n := es.Count("logs-*"); n != 100 {
		t.Fatalf("%d documents, want 100", n)
	}
	seen := map[string]bool{}
	for _, idx := range es.IndicesMatching("logs-*,logweave-deadletter-*") {
		for _, d := range es.Docs(idx) {
			seq := gjsonGet(d, "seq")
			msg := gjsonGet(d, "message")
			if seen[seq] || !strings.HasPrefix(msg, fmt.Sprintf("payment %s captured", seq)) {
				t.Fatalf("message %s: %.200s", seq, d)
			}
			seen[seq] = true
			var i int
			fmt.Sscan(seq, &i)
			if i%10 == 0 && len(msg) < 6000 {
				t.Fatalf("chunked message %d cut: %d bytes", i, len(msg))
			}
			if gjsonGet(d, "log.level") != "warning" || gjsonGet(d, "trace.id") != fmt.Sprintf("req-%d", i/4) ||
				gjsonGet(d, "log.logger") != "payments" || gjsonGet(d, "log.origin.file.line") == "" {
				t.Fatalf("graypy's fields not mapped: %.300s", d)
			}
		}
	}
}
