package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/logweave/logweave/inputs/gelf"
	"github.com/logweave/logweave/internal/gelftest"
	"github.com/logweave/logweave/internal/smallfs"
	"github.com/logweave/logweave/shipper"
)

func gelfShipper(t *testing.T, stateDir, collectorURL string) (*runningShipper, string) {
	t.Helper()
	sc := shipper.DefaultConfig()
	sc.Collector.URLs = []string{collectorURL}
	sc.Collector.Linger = 20 * time.Millisecond
	sc.State.Path = stateDir
	in := shipper.InputConfig{Type: "gelf", GELF: gelf.DefaultConfig(), Spool: shipper.DefaultSpoolConfig()}
	in.GELF.Listen = freeUDPAddr(t)
	sc.Inputs = []shipper.InputConfig{in}
	return runShipperConfig(t, sc), in.GELF.Listen
}

// Bursts into the shipper's GELF input: 20,000 datagrams in 0.2 s, then
// 50,000 in 0.5 s. Nothing is dropped on the way to the spool.
func TestShipperGELFUDPBurstLosesNothing(t *testing.T) {
	srv, got := countingCollector()
	defer srv.Close()
	sh, addr := gelfShipper(t, filepath.Join(t.TempDir(), "state"), srv.URL)
	defer sh.stop(t)
	total := 0
	for _, b := range []struct {
		n int
		d time.Duration
	}{{20000, 200 * time.Millisecond}, {50000, 500 * time.Millisecond}} {
		if err := gelftest.SendBurst(addr, total, b.n, b.d); err != nil {
			t.Fatal(err)
		}
		total += b.n
		eventually(t, 60*time.Second, fmt.Sprintf("%d messages delivered", total), func() bool { return got.Load() >= int64(total) })
	}
	time.Sleep(200 * time.Millisecond)
	if n := got.Load(); n != int64(total) {
		t.Fatalf("%d delivered, want %d", n, total)
	}
}

// The shipper's state disk full: GELF messages are held, not dropped;
// /readyz says why; once there is room, they are spooled and delivered,
// and the shipper is ready again without waiting for an acknowledgement.
func TestShipperStateDiskFullHoldsGELF(t *testing.T) {
	srv, got := countingCollector()
	defer srv.Close()
	state := smallfs.Mount(t, 2<<20)
	sh, addr := gelfShipper(t, state, srv.URL)
	defer sh.stop(t)
	if err := gelftest.SendBurst(addr, 0, 100, 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the first messages", func() bool { return got.Load() == 100 })
	filler := smallfs.Fill(t, state)
	if err := gelftest.SendBurst(addr, 100, 2000, 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "/readyz naming the spool", func() bool {
		ok, why := sh.Ready()
		return !ok && strings.Contains(why, "spool") && strings.Contains(why, "no space left")
	})
	os.Remove(filler)
	eventually(t, 20*time.Second, "every message delivered", func() bool { return got.Load() >= 2100 })
	eventually(t, 5*time.Second, "ready again", func() bool { ok, _ := sh.Ready(); return ok })
	time.Sleep(100 * time.Millisecond)
	if n := got.Load(); n != 2100 {
		t.Fatalf("%d delivered, want 2100", n)
	}
}
