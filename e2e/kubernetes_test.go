package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/tidwall/gjson"
)

// manifestConfig is the file a ConfigMap in deploy/kubernetes carries.
func manifestConfig(t *testing.T, file, configMap, key string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("../deploy/kubernetes", file))
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range strings.Split(string(data), "\n---\n") {
		var m struct {
			Kind     string                `yaml:"kind"`
			Metadata struct{ Name string } `yaml:"metadata"`
			Data     map[string]string     `yaml:"data"`
		}
		if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
			t.Fatal(err)
		}
		if m.Kind == "ConfigMap" && m.Metadata.Name == configMap && m.Data[key] != "" {
			return m.Data[key]
		}
	}
	t.Fatalf("%s: no ConfigMap %s with %s", file, configMap, key)
	return ""
}

// The DaemonSet's shipper, with the configuration from its ConfigMap and
// the DaemonSet's security context (root, no capabilities, read-only root
// filesystem), on a node whose runtime is Docker: /var/log/pods holds
// links to the containers' json-file logs, as cri-dockerd makes them. A
// demo service's request becomes its trace, with the pod's namespace, name
// and container from the path and the node as host.name.
func TestDaemonSetShipperOnADockerNode(t *testing.T) {
	if !dockerAvailable() {
		t.Skip("no Docker daemon answers `docker info` (the project's machines and CI have one)")
	}
	root := strings.TrimSpace(run(t, "docker", "info", "--format", "{{.DockerRootDir}}"))
	if driver := strings.TrimSpace(run(t, "docker", "info", "--format", "{{.LoggingDriver}}")); driver != "json-file" {
		t.Fatalf("the daemon's default log driver is %s; this node stands for one whose pods log to json-file", driver)
	}
	collectorImg, shipperImg, serviceImg := buildImages(t)
	d := newDockerNet(t)
	coll := d.startCollector(collectorImg)

	// The app, logging to stdout through the default json-file driver.
	appPort := strings.Split(freeAddr(t), ":")[1]
	app := "payments-" + d.suffix
	d.start(app, "-p", "127.0.0.1:"+appPort+":8080", serviceImg, "-name", "payments", "-listen", ":8080")
	id := strings.TrimSpace(run(t, "docker", "inspect", "--format", "{{.Id}}", app))
	jsonLog := filepath.Join(root, "containers", id, id+"-json.log")

	// The kubelet's view: /var/log/pods/NAMESPACE_POD_UID/CONTAINER/0.log.
	pods := t.TempDir()
	podDir := filepath.Join(pods, "shop_payments-7d9f8_0a1b2c3d", "payments")
	os.MkdirAll(podDir, 0o755)
	if err := os.Symlink(jsonLog, filepath.Join(podDir, "0.log")); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(d.data, "shipper.yaml")
	os.WriteFile(cfg, []byte(manifestConfig(t, "shipper-daemonset.yaml", "logweave-shipper", "shipper.yaml")), 0o644)
	state := t.TempDir()
	d.start("logweave-shipper-"+d.suffix,
		"--user", "0", "--cap-drop", "ALL", "--read-only", "--security-opt", "no-new-privileges",
		"-e", "NODE_NAME=node-7", "-e", "COLLECTOR_URL=http://"+coll+":8080",
		"-v", cfg+":/etc/logweave/shipper.yaml:ro",
		"-v", pods+":/var/log/pods:ro",
		"-v", filepath.Join(root, "containers")+":/var/lib/docker/containers:ro",
		"-v", state+":/var/lib/logweave",
		shipperImg)

	reqID := fmt.Sprintf("%032x", time.Now().UnixNano())
	eventually(t, 30*time.Second, "the app answering", func() bool {
		req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:"+appPort+"/pay", nil)
		req.Header.Set("X-Request-ID", reqID)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return true
	})
	var out []byte
	eventually(t, 60*time.Second, "the request's trace", func() bool {
		out, _ = d.trace(coll, "-o", "json", reqID)
		return gjson.GetBytes(out, "trace.event_count").Int() == 2
	})
	for _, e := range gjson.GetBytes(out, "events").Array() {
		for path, want := range map[string]string{
			"service.name": "payments", "kubernetes.namespace": "shop", "kubernetes.pod.name": "payments-7d9f8",
			"kubernetes.container.name": "payments", "host.name": "node-7", "stream": "stdout",
		} {
			if got := e.Get(gjson.Escape(path)).String(); got != want {
				if got = e.Get(path).String(); got != want {
					t.Errorf("%s = %q, want %q: %s", path, got, want, e.Raw)
				}
			}
		}
		if strings.Contains(e.Get("message").String(), `"log":`) {
			t.Errorf("the json-file line was not unwrapped: %s", e.Raw)
		}
	}
	// Its checkpoints are on the node (the hostPath), by the file's identity.
	if b, err := os.ReadFile(filepath.Join(state, "checkpoints.json")); err != nil || !strings.Contains(string(b), "/var/log/pods/") {
		t.Errorf("checkpoints on the node: %v %s", err, b)
	}
}
