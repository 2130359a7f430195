package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/logweave/logweave/internal/deploytest"
	"github.com/logweave/logweave/internal/estest"
)

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// buildLoggerImage builds the stand-in application into a scratch image.
func buildLoggerImage(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "app"), "./testdata/logger")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the logger: %v\n%s", err, out)
	}
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\nCOPY app /app\nENTRYPOINT [\"/app\"]\n"), 0o644)
	tag := fmt.Sprintf("logweave-test-logger:%d", time.Now().UnixNano())
	run(t, "docker", "build", "-q", "-t", tag, dir)
	t.Cleanup(func() { exec.Command("docker", "rmi", "-f", tag).Run() })
	return tag
}

// The real Docker gelf log driver, sending a container's stdout and stderr
// to the shipper's GELF input (UDP with gzip, UDP with zlib, TCP), which
// spools and sends them to the collector: every line once, Docker's
// container fields mapped, the line Docker split at 16 KiB joined whole.
func TestDockerGELFDriverThroughShipper(t *testing.T) {
	if !deploytest.DockerAvailable() {
		t.Skip("no Docker daemon answers `docker info` (the project's machines and CI have one)")
	}
	dir := t.TempDir()
	es := estest.New()
	defer es.Close()
	col := startCollector(t, dir, es.URL)
	defer stopCollector(t, col)
	sh, gelfAddr := startGELFShipper(t, dir, col.Addr())
	defer sh.stop(t)

	image := buildLoggerImage(t)
	name := fmt.Sprintf("logweave-orders-%d", time.Now().UnixNano())
	runs := [][]string{
		{"--log-opt", "gelf-address=udp://" + gelfAddr, "--log-opt", "gelf-compression-type=gzip"},
		{"--log-opt", "gelf-address=udp://" + gelfAddr, "--log-opt", "gelf-compression-type=zlib"},
		{"--log-opt", "gelf-address=tcp://" + gelfAddr},
	}
	for i, opts := range runs {
		args := append([]string{"run", "--rm", "--name", fmt.Sprintf("%s-%d", name, i), "--log-driver", "gelf", "--log-opt", "tag=orders"}, opts...)
		run(t, "docker", append(args, image, "50", "long")...)
	}
	const perRun = 50 + 1 + 1 // JSON lines, the long line, the stderr line
	want := len(runs) * perRun
	eventually(t, 30*time.Second, "the containers' lines indexed", func() bool { return es.Count("logs-*") >= want })
	time.Sleep(1500 * time.Millisecond) // a split line, or a duplicate, would show up by now
	if n := es.Count("logs-*"); n != want {
		t.Fatalf("%d documents, want %d", n, want)
	}
	stderr, long := 0, 0
	for _, idx := range es.IndicesMatching("logs-*,logweave-deadletter-*") {
		for _, d := range es.Docs(idx) {
			if !strings.HasPrefix(gjson.GetBytes(d, "container.name").String(), name) ||
				len(gjson.GetBytes(d, "container.id").String()) < 12 ||
				!strings.HasPrefix(gjson.GetBytes(d, "container.image.name").String(), "logweave-test-logger") ||
				gjson.GetBytes(d, "container.tag").String() != "orders" {
				t.Fatalf("Docker's container fields not mapped: %.300s", d)
			}
			switch {
			case gjson.GetBytes(d, "blob").Exists():
				long++
				if b := gjson.GetBytes(d, "blob").String(); b != strings.Repeat("x", 40000) || gjson.GetBytes(d, "log.level").String() != "warn" {
					t.Fatalf("the long line was not joined whole: blob of %d bytes", len(b))
				}
			case gjson.GetBytes(d, "trace.id").Exists():
				if gjson.GetBytes(d, "service.name").String() != "orders" || gjson.GetBytes(d, "log.level").String() != "info" {
					t.Fatalf("JSON line not parsed: %s", d)
				}
			default:
				stderr++
				if gjson.GetBytes(d, "message").String() != "plain text on stderr: shutting down" || gjson.GetBytes(d, "log.level").String() != "error" {
					t.Fatalf("stderr line: %.300s", d)
				}
			}
		}
	}
	if stderr != len(runs) || long != len(runs) {
		t.Fatalf("%d stderr lines and %d long lines, want %d of each", stderr, long, len(runs))
	}
}

// Docker's json-file driver, tailed by the shipper with format docker: the
// runtime's lines unwrapped, a line over 16 KiB joined, stream, container
// id (from the path), name and image (from config.v2.json beside it) added.
func TestDockerJSONFileTailedByShipper(t *testing.T) {
	if !deploytest.DockerAvailable() {
		t.Skip("no Docker daemon answers `docker info` (the project's machines and CI have one)")
	}
	image := buildLoggerImage(t)
	name := fmt.Sprintf("logweave-jsonfile-%d", time.Now().UnixNano())
	id := strings.TrimSpace(run(t, "docker", "run", "-d", "--name", name, "--log-driver", "json-file", image, "30", "long"))
	t.Cleanup(func() { exec.Command("docker", "rm", "-f", id).Run() })
	run(t, "docker", "wait", id)
	logPath := strings.TrimSpace(run(t, "docker", "inspect", "--format", "{{.LogPath}}", id))

	dir := t.TempDir()
	es := estest.New()
	defer es.Close()
	col := startCollector(t, dir, es.URL)
	defer stopCollector(t, col)
	sh := startShipperFormat(t, dir, col.Addr(), "docker", logPath)
	defer sh.stop(t)
	const want = 30 + 1 + 1 // JSON lines, the long one, the stderr line
	eventually(t, 30*time.Second, "the container's log indexed", func() bool { return es.Count("logs-*") >= want })
	time.Sleep(300 * time.Millisecond)
	if n := es.Count("logs-*"); n != want {
		t.Fatalf("%d documents, want %d", n, want)
	}
	var long, stderr int
	for _, idx := range es.IndicesMatching("logs-*,logweave-deadletter-*") {
		for _, d := range es.Docs(idx) {
			if gjson.GetBytes(d, "container.id").String() != id || gjson.GetBytes(d, "container.name").String() != name ||
				gjson.GetBytes(d, "container.image.name").String() != image {
				t.Fatalf("container fields (from the path and config.v2.json) missing: %.300s", d)
			}
			switch gjson.GetBytes(d, "stream").String() {
			case "stdout":
				if gjson.GetBytes(d, "trace.id").String() == "req-long" {
					long++
					if len(gjson.GetBytes(d, "blob").String()) != 40000 || gjson.GetBytes(d, "log.level").String() != "warn" {
						t.Fatalf("long line not joined: %d bytes of blob", len(gjson.GetBytes(d, "blob").String()))
					}
				} else if gjson.GetBytes(d, "service.name").String() != "orders" {
					t.Fatalf("JSON line not parsed: %.300s", d)
				}
			case "stderr":
				stderr++
				if gjson.GetBytes(d, "message").String() != "plain text on stderr: shutting down" {
					t.Fatalf("stderr line: %s", d)
				}
			default:
				t.Fatalf("no stream: %.300s", d)
			}
		}
	}
	if long != 1 || stderr != 1 {
		t.Fatalf("long %d, stderr %d", long, stderr)
	}
}
