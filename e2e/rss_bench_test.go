package e2e

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// BenchmarkShipperPeakRSS runs the shipper binary over a file of 1,000,000
// JSON lines against a collector stand-in that acknowledges at once, and
// reports the process's peak RSS (VmHWM) and its throughput. One op is the
// whole million.
func BenchmarkShipperPeakRSS(b *testing.B) {
	const lines = 1_000_000
	dir := b.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "shipper"), "../cmd/shipper")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("%v\n%s", err, out)
	}
	srv, got := countingCollector()
	defer srv.Close()
	logs := filepath.Join(dir, "logs")
	os.MkdirAll(logs, 0o755)
	f, _ := os.Create(filepath.Join(logs, "app.log"))
	w := bufio.NewWriterSize(f, 1<<20)
	for i := 0; i < lines; i++ {
		fmt.Fprintf(w, `{"time":"2026-11-26T10:15:00.123Z","level":"INFO","service":"payment","msg":"charged card %d","request_id":"req-%d","amount":42.5}`+"\n", i, i/5)
	}
	w.Flush()
	f.Close()
	var peakKiB int64
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		got.Store(0)
		state := filepath.Join(dir, fmt.Sprintf("state-%d", n))
		cfg := filepath.Join(dir, "shipper.yaml")
		os.WriteFile(cfg, []byte(fmt.Sprintf("collector: {urls: [%q]}\nstate: {path: %q}\ninputs:\n  - {type: file, paths: [%q]}\n",
			srv.URL, state, filepath.Join(logs, "*.log"))), 0o644)
		cmd := exec.Command(filepath.Join(dir, "shipper"), "-config", cfg)
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Minute)
		for got.Load() < lines && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
		for _, l := range strings.Split(string(status), "\n") {
			if strings.HasPrefix(l, "VmHWM:") {
				var kb int64
				fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(l, "VmHWM:")), "%d", &kb)
				peakKiB = max(peakKiB, kb)
			}
		}
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		if got.Load() < lines {
			b.Fatalf("only %d of %d lines arrived", got.Load(), lines)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(peakKiB)/1024, "peak-RSS-MiB")
	b.ReportMetric(float64(lines*b.N)/b.Elapsed().Seconds(), "lines/s")
}
