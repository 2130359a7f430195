package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/tidwall/gjson"
)

// The tests here run the pods of deploy/kubernetes on this machine's
// Docker engine the way a kubelet would run them — the manifests' own
// args, env, mounts, ConfigMaps and security contexts — since no cluster
// can run here. What they cannot show: scheduling, probes, Services.

type k8sContainer struct {
	Name          string   `yaml:"name"`
	Image         string   `yaml:"image"`
	Args          []string `yaml:"args"`
	RestartPolicy string   `yaml:"restartPolicy"`
	Env           []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			FieldRef struct {
				FieldPath string `yaml:"fieldPath"`
			} `yaml:"fieldRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		ReadOnly  bool   `yaml:"readOnly"`
	} `yaml:"volumeMounts"`
	SecurityContext *k8sSecurity `yaml:"securityContext"`
}

type k8sSecurity struct {
	RunAsUser              *int64 `yaml:"runAsUser"`
	ReadOnlyRootFilesystem bool   `yaml:"readOnlyRootFilesystem"`
	Capabilities           struct {
		Drop []string `yaml:"drop"`
	} `yaml:"capabilities"`
}

type k8sDoc struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Data map[string]string `yaml:"data"`
	Spec struct {
		Template struct {
			Spec struct {
				SecurityContext *k8sSecurity   `yaml:"securityContext"`
				InitContainers  []k8sContainer `yaml:"initContainers"`
				Containers      []k8sContainer `yaml:"containers"`
				Volumes         []struct {
					Name      string                 `yaml:"name"`
					EmptyDir  *struct{}              `yaml:"emptyDir"`
					HostPath  *struct{ Path string } `yaml:"hostPath"`
					ConfigMap *struct{ Name string } `yaml:"configMap"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

func k8sDocs(t *testing.T, file string) []k8sDoc {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("../deploy/kubernetes", file))
	if err != nil {
		t.Fatal(err)
	}
	var docs []k8sDoc
	for _, doc := range strings.Split(string(data), "\n---\n") {
		var d k8sDoc
		if err := yaml.Unmarshal([]byte(doc), &d); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		docs = append(docs, d)
	}
	return docs
}

// pod is what runPod needs besides the manifest.
type pod struct {
	file, kind, name string
	podName, node    string
	images           map[string]string // logweave/NAME -> the test's image
	hostPaths        map[string]string // a hostPath volume's path -> this machine's
	env              map[string]string // added to every container (e.g. the collector's address)
}

// runPod starts the containers of a Deployment's or DaemonSet's pod
// template: native sidecars (init containers with restartPolicy Always)
// first, then the containers; emptyDirs are folders every container of the
// pod shares, ConfigMaps folders of their files.
func runPod(t *testing.T, d *dockerNet, p pod) {
	t.Helper()
	docs := k8sDocs(t, p.file)
	configMaps := map[string]map[string]string{}
	var spec *k8sDoc
	for i, doc := range docs {
		switch {
		case doc.Kind == "ConfigMap":
			configMaps[doc.Metadata.Name] = doc.Data
		case doc.Kind == p.kind && doc.Metadata.Name == p.name:
			spec = &docs[i]
		}
	}
	if spec == nil {
		t.Fatalf("%s: no %s %s", p.file, p.kind, p.name)
	}
	ps := spec.Spec.Template.Spec
	volumes := map[string]string{}
	for _, v := range ps.Volumes {
		dir := filepath.Join(d.data, "pod-"+p.name, v.Name)
		switch {
		case v.EmptyDir != nil:
			os.MkdirAll(dir, 0o777)
			os.Chmod(dir, 0o777) // as the kubelet makes them
		case v.ConfigMap != nil:
			os.MkdirAll(dir, 0o755)
			cm, ok := configMaps[v.ConfigMap.Name]
			if !ok {
				t.Fatalf("configmap %s is not in %s", v.ConfigMap.Name, p.file)
			}
			for k, val := range cm {
				os.WriteFile(filepath.Join(dir, k), []byte(val), 0o644)
			}
		case v.HostPath != nil:
			if dir = p.hostPaths[v.HostPath.Path]; dir == "" {
				t.Fatalf("hostPath %s: no stand-in given", v.HostPath.Path)
			}
		default:
			t.Fatalf("volume %s: unsupported kind", v.Name)
		}
		volumes[v.Name] = dir
	}
	var run []k8sContainer
	for _, c := range ps.InitContainers {
		if c.RestartPolicy != "Always" {
			t.Fatalf("init container %s is not a native sidecar; running one to completion is not done here", c.Name)
		}
		run = append(run, c)
	}
	for _, c := range append(run, ps.Containers...) {
		img, _, _ := strings.Cut(c.Image, ":")
		if p.images[img] == "" {
			t.Fatalf("%s runs %s, not an image of this repository", c.Name, c.Image)
		}
		args := []string{"--cap-drop", "ALL", "--security-opt", "no-new-privileges"}
		for _, sc := range []*k8sSecurity{ps.SecurityContext, c.SecurityContext} {
			if sc == nil {
				continue
			}
			if sc.RunAsUser != nil {
				args = append(args, "--user", strconv.FormatInt(*sc.RunAsUser, 10))
			}
			if sc.ReadOnlyRootFilesystem {
				args = append(args, "--read-only")
			}
		}
		for _, e := range c.Env {
			val := e.Value
			if e.ValueFrom != nil {
				switch e.ValueFrom.FieldRef.FieldPath {
				case "metadata.name":
					val = p.podName
				case "spec.nodeName":
					val = p.node
				default:
					t.Fatalf("%s: fieldRef %s", c.Name, e.ValueFrom.FieldRef.FieldPath)
				}
			}
			args = append(args, "-e", e.Name+"="+val)
		}
		for k, v := range p.env {
			args = append(args, "-e", k+"="+v)
		}
		for _, m := range c.VolumeMounts {
			src := volumes[m.Name]
			if src == "" {
				t.Fatalf("%s mounts %s, which the pod does not have", c.Name, m.Name)
			}
			mount := src + ":" + m.MountPath
			if m.ReadOnly {
				mount += ":ro"
			}
			args = append(args, "-v", mount)
		}
		args = append(args, p.images[img])
		d.start(p.podName+"-"+c.Name+"-"+d.suffix, append(args, c.Args...)...)
	}
}

func images(collector, shipper, demoService string) map[string]string {
	return map[string]string{"logweave/collector": collector, "logweave/shipper": shipper, "logweave/demo-service": demoService}
}

// The DaemonSet's pod on a node whose runtime is Docker: /var/log/pods
// holds links to the containers' json-file logs, as cri-dockerd makes
// them. A demo service's request becomes its trace, with the pod's
// namespace, name and container from the path and the node as host.name;
// the shipper runs as the DaemonSet says (root, no capabilities, read-only
// root) and keeps its checkpoints on the node.
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

	// The kubelet's view: /var/log/pods/NAMESPACE_POD_UID/CONTAINER/0.log.
	pods := t.TempDir()
	podDir := filepath.Join(pods, "shop_payments-7d9f8_0a1b2c3d", "payments")
	os.MkdirAll(podDir, 0o755)
	if err := os.Symlink(filepath.Join(root, "containers", id, id+"-json.log"), filepath.Join(podDir, "0.log")); err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	runPod(t, d, pod{file: "shipper-daemonset.yaml", kind: "DaemonSet", name: "logweave-shipper",
		podName: "logweave-shipper-x7k2p", node: "node-7",
		images:    images(collectorImg, shipperImg, serviceImg),
		hostPaths: map[string]string{"/var/log/pods": pods, "/var/lib/docker/containers": filepath.Join(root, "containers"), "/var/lib/logweave-shipper": state},
		env:       map[string]string{"COLLECTOR_URL": "http://" + coll + ":8080"},
	})

	reqID := request(t, "http://127.0.0.1:"+appPort+"/pay")
	out := waitTrace(t, d, coll, reqID, 2)
	for _, e := range gjson.GetBytes(out, "events").Array() {
		for path, want := range map[string]string{
			"service.name": "payments", "kubernetes.namespace": "shop", "kubernetes.pod.name": "payments-7d9f8",
			"kubernetes.container.name": "payments", "host.name": "node-7", "stream": "stdout",
		} {
			if got := field(e, path); got != want {
				t.Errorf("%s = %q, want %q: %s", path, got, want, e.Raw)
			}
		}
		if strings.Contains(e.Get("message").String(), `"log":`) {
			t.Errorf("the json-file line was not unwrapped: %s", e.Raw)
		}
	}
	if b, err := os.ReadFile(filepath.Join(state, "checkpoints.json")); err != nil || !strings.Contains(string(b), "/var/log/pods/") {
		t.Errorf("checkpoints on the node: %v %s", err, b)
	}
}

// The sidecar example's pod: payments writes its log file into the
// emptyDir, the shipper sidecar (as nobody, read-only root) tails it; a
// request's trace has payments' events, host.name the pod's name.
func TestSidecarExamplePod(t *testing.T) {
	if !dockerAvailable() {
		t.Skip("no Docker daemon answers `docker info` (the project's machines and CI have one)")
	}
	collectorImg, shipperImg, serviceImg := buildImages(t)
	d := newDockerNet(t)
	coll := d.startCollector(collectorImg)
	runPod(t, d, pod{file: "sidecar-example.yaml", kind: "Deployment", name: "payments",
		podName: "payments-5c7d9-q2w4e", images: images(collectorImg, shipperImg, serviceImg),
		env: map[string]string{"COLLECTOR_URL": "http://" + coll + ":8080"},
	})
	app := "payments-5c7d9-q2w4e-payments-" + d.suffix
	ip := strings.TrimSpace(run(t, "docker", "inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", app))
	reqID := request(t, "http://"+ip+":8080/pay")
	out := waitTrace(t, d, coll, reqID, 2)
	for _, e := range gjson.GetBytes(out, "events").Array() {
		if field(e, "service.name") != "payments" || field(e, "host.name") != "payments-5c7d9-q2w4e" || !strings.HasPrefix(field(e, "log.file.path"), "/var/log/app/") {
			t.Errorf("event: %s", e.Raw)
		}
	}
	// The app writes its log to the file only: a node agent tailing
	// stdout would ship every line twice.
	if logs := run(t, "docker", "logs", app); strings.Contains(logs, reqID) {
		t.Errorf("the app logged the request to stdout too:\n%s", logs)
	}
}

// request sends one POST with a fresh X-Request-ID until it is answered.
func request(t *testing.T, url string) string {
	t.Helper()
	id := fmt.Sprintf("%032x", time.Now().UnixNano())
	eventually(t, 30*time.Second, "the app answering", func() bool {
		req, _ := http.NewRequest(http.MethodPost, url, nil)
		req.Header.Set("X-Request-ID", id)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return true
	})
	return id
}

func waitTrace(t *testing.T, d *dockerNet, coll, id string, events int64) []byte {
	t.Helper()
	var out []byte
	eventually(t, 60*time.Second, "the request's trace", func() bool {
		out, _ = d.trace(coll, "-o", "json", id)
		return gjson.GetBytes(out, "trace.event_count").Int() == events
	})
	return out
}

// field reads a dotted ECS field, flat or nested.
func field(e gjson.Result, path string) string {
	if v := e.Get(gjson.Escape(path)); v.Exists() {
		return v.String()
	}
	return e.Get(path).String()
}
