package e2e

import (
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/logweave/logweave/inputs/forward"
	"github.com/logweave/logweave/inputs/gelf"
	"github.com/logweave/logweave/inputs/syslog"
	"github.com/logweave/logweave/inputs/tail"
	"github.com/logweave/logweave/internal/estest"
	"github.com/logweave/logweave/shipper"
)

func defaultTail() tail.Config { return tail.DefaultConfig() }

func gjsonGet(doc []byte, path string) string { return gjson.GetBytes(doc, path).String() }

// startGELFShipper runs a shipper with one GELF input on a free port,
// sending to the collector at collectorAddr; it returns the GELF address.
func startGELFShipper(t testing.TB, dir, collectorAddr string) (*runningShipper, string) {
	t.Helper()
	sc := shipper.DefaultConfig()
	sc.Collector.URLs = []string{"http://" + collectorAddr}
	sc.Collector.Linger = 20 * time.Millisecond
	sc.State.Path = filepath.Join(dir, "state")
	in := shipper.InputConfig{Type: "gelf", GELF: gelf.DefaultConfig(), Spool: shipper.DefaultSpoolConfig()}
	in.GELF.Listen = freeUDPAddr(t)
	sc.Inputs = []shipper.InputConfig{in}
	return runShipperConfig(t, sc), in.GELF.Listen
}

// startListeningShipper runs a shipper with one listening input of type
// kind (syslog or forward) on a free port, sending to the collector at
// collectorAddr; it returns where the input listens.
func startListeningShipper(t testing.TB, dir, collectorAddr, kind string) (*runningShipper, string) {
	t.Helper()
	sc := shipper.DefaultConfig()
	sc.Collector.URLs = []string{"http://" + collectorAddr}
	sc.Collector.Linger = 20 * time.Millisecond
	sc.State.Path = filepath.Join(dir, "state-"+kind)
	in := shipper.InputConfig{Type: kind, Syslog: syslog.DefaultConfig(), Forward: forward.DefaultConfig(), Spool: shipper.DefaultSpoolConfig()}
	in.Syslog.Listen, in.Forward.Listen = "127.0.0.1:0", "127.0.0.1:0"
	sc.Inputs = []shipper.InputConfig{in}
	if err := sc.Validate(); err != nil {
		t.Fatal(err)
	}
	sh := runShipperConfig(t, sc)
	return sh, sh.ListenAddr(0)
}

// countingCollector stands in for the collector: it acknowledges every
// batch at once and counts the lines it got.
func countingCollector() (*httptest.Server, *atomic.Int64) {
	var got atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		envs, err := estest.ReadEnvelopes(r)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		got.Add(int64(len(envs)))
		io.WriteString(w, `{"accepted":1}`)
	}))
	return srv, &got
}
