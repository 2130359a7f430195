package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/logweave/logweave/collector"
	"github.com/logweave/logweave/internal/deploytest"
	"github.com/logweave/logweave/internal/estest"
)

// The real Docker syslog log driver, sending a container's stdout and
// stderr to the collector's syslog input over UDP (RFC 5424 with
// microseconds) and TCP (RFC 3164): every line once, its JSON parsed, the
// syslog header mapped (the tag as log.syslog.appname).
func TestDockerSyslogDriverToCollector(t *testing.T) { dockerSyslogDriver(t, false) }

// The same through a shipper's syslog input, which spools the messages
// and sends them on to the collector: the same documents.
func TestDockerSyslogDriverThroughShipper(t *testing.T) { dockerSyslogDriver(t, true) }

func dockerSyslogDriver(t *testing.T, viaShipper bool) {
	if !deploytest.DockerAvailable() {
		t.Skip("no Docker daemon answers `docker info` (the project's machines and CI have one)")
	}
	dir := t.TempDir()
	es := estest.New()
	defer es.Close()
	col := startCollector(t, dir, es.URL, func(c *collector.Config) { c.Syslog.Listen = "127.0.0.1:0" })
	defer stopCollector(t, col)
	addr := col.SyslogAddr()
	if viaShipper {
		sh, a := startListeningShipper(t, dir, col.Addr(), "syslog")
		defer sh.stop(t)
		addr = a
	}

	image := buildLoggerImage(t)
	name := fmt.Sprintf("logweave-syslog-%d", time.Now().UnixNano())
	runs := [][]string{
		{"--log-opt", "syslog-address=udp://" + addr, "--log-opt", "syslog-format=rfc5424micro"},
		{"--log-opt", "syslog-address=tcp://" + addr, "--log-opt", "syslog-format=rfc3164"},
	}
	for i, opts := range runs {
		args := append([]string{"run", "--rm", "--name", fmt.Sprintf("%s-%d", name, i), "--log-driver", "syslog", "--log-opt", "tag=orders"}, opts...)
		run(t, "docker", append(args, image, "50")...)
	}
	const perRun = 50 + 1 // JSON lines, the stderr line
	want := len(runs) * perRun
	eventually(t, 30*time.Second, "the containers' lines indexed", func() bool { return es.Count("logs-*") >= want })
	time.Sleep(1500 * time.Millisecond) // a duplicate would show up by now
	if n := es.Count("logs-*"); n != want {
		t.Fatalf("%d documents, want %d", n, want)
	}
	stderr := 0
	for _, idx := range es.IndicesMatching("logs-*,logweave-deadletter-*") {
		for _, d := range es.Docs(idx) {
			if gjson.GetBytes(d, "log.syslog.appname").String() != "orders" || !gjson.GetBytes(d, "log.syslog.priority").Exists() {
				t.Fatalf("syslog header not mapped: %.400s", d)
			}
			switch {
			case gjson.GetBytes(d, "trace.id").Exists():
				if gjson.GetBytes(d, "service.name").String() != "orders" || gjson.GetBytes(d, "log.level").String() != "info" {
					t.Fatalf("JSON line not parsed: %s", d)
				}
			default:
				stderr++
				if gjson.GetBytes(d, "message").String() != "plain text on stderr: shutting down" || gjson.GetBytes(d, "log.syslog.severity.name").String() != "Error" {
					t.Fatalf("stderr line: %.400s", d)
				}
			}
		}
	}
	if stderr != len(runs) {
		t.Fatalf("%d stderr lines, want %d", stderr, len(runs))
	}
}
