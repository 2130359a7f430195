package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	gogelf "github.com/Graylog2/go-gelf/gelf"

	"github.com/logweave/logweave/collector"
	"github.com/logweave/logweave/inputs/gelf"
	"github.com/logweave/logweave/internal/estest"
	"github.com/logweave/logweave/shipper"
)

// The collector is down for 30 s while an application keeps writing to a
// file and another sends GELF to the shipper: the shipper holds its
// checkpoints, keeps the GELF messages in its on-disk spool (also across a
// restart of the shipper in the middle of the outage), retries, and
// delivers everything once the collector is back — nothing lost, nothing
// doubled.
func TestCollectorDown30SecondsLosesNothing(t *testing.T) {
	dir := t.TempDir()
	es := estest.New()
	defer es.Close()
	addr, gelfAddr := freeAddr(t), freeUDPAddr(t)
	newCollector := func() *collector.Collector {
		cfg := collector.DefaultConfig()
		cfg.HTTP.Listen = addr
		cfg.Buffer.Path = filepath.Join(dir, "buffer")
		cfg.Elasticsearch.URLs = []string{es.URL}
		c, err := collector.New(cfg, quiet)
		if err != nil {
			t.Fatal(err)
		}
		c.Start()
		return c
	}
	col := newCollector()

	sc := shipper.DefaultConfig()
	sc.Collector.URLs = []string{"http://" + addr}
	sc.Collector.Linger = 20 * time.Millisecond
	sc.Collector.RetryMax = 2 * time.Second
	sc.State.Path = filepath.Join(dir, "state")
	in := shipper.InputConfig{Type: "file", Config: defaultTail()}
	in.Paths = []string{filepath.Join(dir, "logs", "*.log")}
	in.ScanInterval, in.PollInterval = 50*time.Millisecond, 20*time.Millisecond
	gin := shipper.InputConfig{Type: "gelf", GELF: gelf.DefaultConfig(), Spool: shipper.SpoolConfig{MaxBytes: 64 << 20}}
	gin.GELF.Listen = gelfAddr
	sc.Inputs = []shipper.InputConfig{in, gin}
	os.MkdirAll(filepath.Join(dir, "logs"), 0o755)
	sh := runShipperConfig(t, sc)

	const total = 4000 // 100 lines/s over 40 s, and as many GELF messages
	var wg sync.WaitGroup
	var gelfPause sync.Mutex // held while the shipper restarts: UDP to nobody is lost by any tool
	wg.Add(2)
	go func() {
		defer wg.Done()
		f, err := os.Create(filepath.Join(dir, "logs", "app.log"))
		if err != nil {
			t.Error(err)
			return
		}
		defer f.Close()
		for i := 0; i < total; i++ {
			fmt.Fprintf(f, `{"level":"info","msg":"tick","seq":%d}`+"\n", i)
			time.Sleep(10 * time.Millisecond)
		}
	}()
	go func() {
		defer wg.Done()
		w, err := gogelf.NewUDPWriter(gelfAddr)
		if err != nil {
			t.Error(err)
			return
		}
		defer w.Close()
		for i := 0; i < total; i++ {
			gelfPause.Lock()
			err := w.WriteMessage(&gogelf.Message{Version: "1.1", Host: "app-2", Short: fmt.Sprintf(`{"msg":"gelf tick","gseq":%d}`, i),
				TimeUnix: float64(time.Now().UnixNano()) / 1e9, Level: 6, Extra: map[string]any{"_container_name": "app-2"}})
			gelfPause.Unlock()
			if err != nil {
				t.Error(err)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	time.Sleep(5 * time.Second)
	stopCollector(t, col)
	downAt := es.Count("logs-*")
	time.Sleep(12 * time.Second)
	gelfPause.Lock()
	sh.stop(t) // the spool survives the shipper's restart
	sh = runShipperConfig(t, sc)
	gelfPause.Unlock()
	defer func() { sh.stop(t) }()
	time.Sleep(18 * time.Second)
	if sh.Acked() > 0 {
		t.Fatalf("shipper acknowledged %d events with the collector down", sh.Acked())
	}
	col = newCollector()
	defer stopCollector(t, col)
	wg.Wait()
	deadline := time.Now().Add(90 * time.Second)
	for es.Count("logs-*") < 2*total {
		if time.Now().After(deadline) {
			lines, msgs := 0, 0
			for _, idx := range es.IndicesMatching("logs-*") {
				for _, d := range es.Docs(idx) {
					if gjsonGet(d, "gseq") != "" {
						msgs++
					} else {
						lines++
					}
				}
			}
			t.Fatalf("after the outage: %d of %d lines and %d of %d GELF messages delivered in 90 s; shipper acked %d", lines, total, msgs, total, sh.Acked())
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	lines, msgs := map[string]bool{}, map[string]bool{}
	for _, idx := range es.IndicesMatching("logs-*,logweave-deadletter-*") {
		for _, d := range es.Docs(idx) {
			if g := gjsonGet(d, "gseq"); g != "" {
				if msgs[g] {
					t.Fatalf("GELF message %s twice", g)
				}
				msgs[g] = true
				if gjsonGet(d, "container.name") != "app-2" {
					t.Fatalf("GELF message without its container: %s", d)
				}
				continue
			}
			if seq := gjsonGet(d, "seq"); lines[seq] {
				t.Fatalf("line %s twice", seq)
			} else {
				lines[seq] = true
			}
		}
	}
	if len(lines) != total || len(msgs) != total {
		t.Fatalf("%d lines and %d GELF messages indexed, want %d of each", len(lines), len(msgs), total)
	}
	t.Logf("%d indexed before the outage, all %d lines and %d GELF messages after", downAt, total, total)
}

func freeAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// freeUDPAddr is a port free for both UDP and TCP (GELF takes both).
func freeUDPAddr(t testing.TB) string {
	for range 20 {
		u, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		a := u.LocalAddr().String()
		l, err := net.Listen("tcp", a)
		u.Close()
		if err == nil {
			l.Close()
			return a
		}
	}
	t.Fatal("no port free for UDP and TCP")
	return ""
}
