package compose_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/tidwall/gjson"

	"github.com/logweave/logweave/internal/deploytest"
)

// The stack's own services, run for real with docker-compose from this
// docker-compose.yml: the node shipper (GELF from the daemon), orders
// logging through the gelf driver, payments writing its log file into the
// shared volume, its shipper sidecar, and the collector. Kafka,
// Elasticsearch, Kibana and nginx cannot be pulled on the project's
// machines, so those services are left out, the collector writes files
// instead, and the fixed host ports become free ones; everything else —
// volumes and their permissions, the mounted shipper configs, service
// names, commands, the gelf logging stanza — is the file's own. One
// request's trace has the events of both services.
func TestComposeStackRunsOurServices(t *testing.T) {
	if !deploytest.DockerAvailable() {
		t.Skip("no Docker daemon answers `docker info` (the project's machines and CI have one)")
	}
	compose, err := exec.LookPath("docker-compose")
	if err != nil {
		t.Skip("docker-compose is not installed (.ci/run installs Debian's)")
	}
	collectorImg, shipperImg, serviceImg := deploytest.BuildImages(t, "../..")
	here, _ := filepath.Abs(".")
	dir := t.TempDir()

	data, err := os.ReadFile("docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var stack map[string]any
	if err := yaml.Unmarshal(data, &stack); err != nil {
		t.Fatal(err)
	}
	gelfPort, ordersPort := freePort(t, "udp"), freePort(t, "tcp")
	images := map[string]string{"logweave/collector": collectorImg, "logweave/shipper": shipperImg, "logweave/demo-service": serviceImg}
	keep := map[string]bool{"collector": true, "shipper": true, "orders": true, "payments": true, "payments-shipper": true}
	services := stack["services"].(map[string]any)
	for name, v := range services {
		if !keep[name] {
			delete(services, name)
			continue
		}
		svc := v.(map[string]any)
		delete(svc, "build")
		img, _, _ := strings.Cut(svc["image"].(string), ":")
		if images[img] == "" {
			t.Fatalf("%s runs %s, not an image of this repository", name, svc["image"])
		}
		svc["image"] = images[img]
		if deps, ok := svc["depends_on"].(map[string]any); ok {
			for dep := range deps {
				if !keep[dep] {
					delete(deps, dep)
				}
			}
		}
		// Bind mounts from this folder, by absolute path.
		if vols, ok := svc["volumes"].([]any); ok {
			for i, v := range vols {
				if s := v.(string); strings.HasPrefix(s, "./") {
					vols[i] = filepath.Join(here, s)
				}
			}
		}
	}
	collectorYAML := filepath.Join(dir, "collector.yaml")
	os.WriteFile(collectorYAML, []byte("http: {listen: \"0.0.0.0:8080\", token: ${LOGWEAVE_TOKEN}}\nbuffer: {path: /var/lib/logweave/buffer}\n"+
		"file_output: {path: /var/lib/logweave/out}\ncorrelation: {window: 1s}\n"), 0o644)
	coll := services["collector"].(map[string]any)
	delete(coll, "ports")
	coll["volumes"] = []any{collectorYAML + ":/etc/logweave/collector.yaml:ro", "collector-data:/var/lib/logweave"}
	services["shipper"].(map[string]any)["ports"] = []any{fmt.Sprintf("127.0.0.1:%d:12201/udp", gelfPort)}
	orders := services["orders"].(map[string]any)
	orders["ports"] = []any{fmt.Sprintf("127.0.0.1:%d:8080", ordersPort)}
	logging := orders["logging"].(map[string]any)
	if logging["driver"] != "gelf" {
		t.Fatalf("orders logs with %v", logging["driver"])
	}
	logging["options"].(map[string]any)["gelf-address"] = fmt.Sprintf("udp://127.0.0.1:%d", gelfPort)
	out, err := yaml.Marshal(stack)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "docker-compose.yml")
	os.WriteFile(file, out, 0o644)

	project := fmt.Sprintf("logweavetest%d", time.Now().UnixNano())
	dc := func(args ...string) ([]byte, error) {
		cmd := exec.Command(compose, append([]string{"-p", project, "-f", file}, args...)...)
		cmd.Env = append(os.Environ(), "LOGWEAVE_TOKEN="+testToken)
		return cmd.CombinedOutput()
	}
	t.Cleanup(func() {
		if t.Failed() {
			logs, _ := dc("logs", "--no-color", "--tail", "50")
			t.Logf("docker-compose logs:\n%s", logs)
		}
		dc("down", "-v", "--remove-orphans", "-t", "5")
	})
	if out, err := dc("up", "-d", "--no-build"); err != nil {
		t.Fatalf("docker-compose up: %v\n%s", err, out)
	}

	id := deploytest.Request(t, fmt.Sprintf("http://127.0.0.1:%d/orders", ordersPort))
	var trace []byte
	waitFor(t, 90*time.Second, "the request's trace from orders (gelf) and payments (sidecar)", func() bool {
		trace, _ = dc("exec", "-T", "collector", "/collector", "trace", "-config", "/etc/logweave/collector.yaml", "-o", "json", id)
		return gjson.GetBytes(trace, "trace.event_count").Int() == 4
	})
	by := map[string]int{}
	for _, e := range gjson.GetBytes(trace, "events").Array() {
		by[e.Get("service.name").String()]++
	}
	if by["orders"] != 2 || by["payments"] != 2 {
		t.Fatalf("events by service %v: %s", by, trace)
	}
}

func freePort(t *testing.T, network string) int {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !cond(); time.Sleep(250 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
	}
}
