package e2e

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/logweave/logweave/internal/deploytest"
)

func buildImages(t *testing.T) (collector, shipper, demoService string) {
	return deploytest.BuildImages(t, "..")
}

// dockerNet is a user-defined network for one test's containers, removed
// with them at its end, and a folder they can write (they run as nobody).
type dockerNet struct {
	t          *testing.T
	suffix     string
	net        string
	data       string
	containers []string
}

func newDockerNet(t *testing.T) *dockerNet {
	d := &dockerNet{t: t, suffix: fmt.Sprint(time.Now().UnixNano()), data: t.TempDir()}
	d.net = "logweave-test-" + d.suffix
	os.Chmod(d.data, 0o777)
	run(t, "docker", "network", "create", d.net)
	t.Cleanup(func() {
		if len(d.containers) > 0 {
			exec.Command("docker", append([]string{"rm", "-f"}, d.containers...)...).Run()
		}
		exec.Command("docker", "network", "rm", d.net).Run()
	})
	return d
}

// start runs a container on the network: docker run -d --name name args...
func (d *dockerNet) start(name string, args ...string) {
	d.t.Helper()
	d.containers = append(d.containers, name)
	run(d.t, "docker", append([]string{"run", "-d", "--name", name, "--network", d.net}, args...)...)
}

// startCollector runs the collector image's default command with a
// collector.yaml (file output under the data folder, 1 s trace window)
// mounted where compose and Kubernetes mount it; it returns the
// container's name, which is also its host name on the network.
func (d *dockerNet) startCollector(image string) string {
	d.t.Helper()
	os.WriteFile(filepath.Join(d.data, "collector.yaml"), []byte(
		"http: {listen: \"0.0.0.0:8080\"}\nbuffer: {path: /var/lib/logweave/buffer}\nfile_output: {path: /data/out}\ncorrelation: {window: 1s}\n"), 0o644)
	name := "logweave-collector-" + d.suffix
	d.start(name, "-v", d.data+":/data", "-v", filepath.Join(d.data, "collector.yaml")+":/etc/logweave/collector.yaml:ro", image)
	return name
}

// trace runs `collector trace` in the collector's container.
func (d *dockerNet) trace(collector string, args ...string) ([]byte, error) {
	return exec.Command("docker", append([]string{"exec", collector, "/collector", "trace", "-config", "/etc/logweave/collector.yaml"}, args...)...).Output()
}

// The collector, a shipper and two demo services as containers on a
// user-defined network, built from this repository on scratch: the services
// log through Docker's gelf driver to the shipper, the shipper sends to the
// collector by its container name, and `collector trace`, run in the
// collector's container, shows one request's events from both services.
func TestContainersTraceARequestAcrossServices(t *testing.T) {
	if !deploytest.DockerAvailable() {
		t.Skip("no Docker daemon answers `docker info` (the project's machines and CI have one)")
	}
	t0 := time.Now()
	collectorImg, shipperImg, serviceImg := buildImages(t)
	t.Logf("images built in %s", time.Since(t0).Round(time.Millisecond))
	d := newDockerNet(t)
	suffix, start, data := d.suffix, d.start, d.data
	coll := d.startCollector(collectorImg)
	gelfPort := strings.Split(freeUDPAddr(t), ":")[1]
	os.WriteFile(filepath.Join(data, "shipper.yaml"), []byte(fmt.Sprintf(
		"collector: {urls: [\"http://%s:8080\"], linger: 50ms}\nstate: {path: /var/lib/logweave}\ninputs:\n  - type: gelf\n    listen: \"0.0.0.0:12201\"\n", coll)), 0o644)
	// The shipper runs its image's default command too.
	start("logweave-shipper-"+suffix, "-v", filepath.Join(data, "shipper.yaml")+":/etc/logweave/shipper.yaml:ro", "-p", "127.0.0.1:"+gelfPort+":12201/udp", shipperImg)
	gelfOpts := []string{"--log-driver", "gelf", "--log-opt", "gelf-address=udp://127.0.0.1:" + gelfPort}
	payments := "payments-" + suffix
	start(payments, append(gelfOpts, serviceImg, "-name", "payments", "-listen", ":8080")...)
	ordersPort := strings.Split(freeAddr(t), ":")[1]
	start("orders-"+suffix, append(append(gelfOpts, "-p", "127.0.0.1:"+ordersPort+":8080"), serviceImg,
		"-name", "orders", "-listen", ":8080", "-next", "http://"+payments+":8080/pay")...)

	// Requests with the id the gateway would stamp, until the services
	// answer (the containers take a moment to start).
	id := fmt.Sprintf("%032x", time.Now().UnixNano())
	eventually(t, 30*time.Second, "the orders service answering", func() bool {
		req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:"+ordersPort+"/orders", nil)
		req.Header.Set("X-Request-ID", id)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	t.Logf("services answering after %s", time.Since(t0).Round(time.Millisecond))
	var out []byte
	eventually(t, 60*time.Second, "the request's trace with both services", func() bool {
		out, _ = d.trace(coll, "-o", "json", id)
		return gjson.GetBytes(out, "trace.services.#").Int() == 2
	})
	t.Logf("trace found after %s", time.Since(t0).Round(time.Millisecond))
	services := map[string]int{}
	for _, e := range gjson.GetBytes(out, "events").Array() {
		services[e.Get("service.name").String()]++
		if !strings.HasPrefix(e.Get("container.name").String(), strings.Split(e.Get("service.name").String(), "-")[0]) {
			t.Fatalf("event without its container: %s", e.Raw)
		}
	}
	if services["orders"] != 2 || services["payments"] != 2 || gjson.GetBytes(out, "trace.event_count").Int() != 4 {
		t.Fatalf("events by service %v; trace: %s", services, gjson.GetBytes(out, "trace").Raw)
	}
	text, err := d.trace(coll, id)
	if err != nil || !strings.Contains(string(text), "orders") || !strings.Contains(string(text), "payments") {
		t.Fatalf("waterfall: %v\n%s", err, text)
	}
	t.Logf("collector trace %s, in the collector's container:\n%s", id, text)
}
