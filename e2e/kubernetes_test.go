package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/tidwall/gjson"

	"github.com/logweave/logweave/internal/deploytest"
	"github.com/logweave/logweave/internal/estest"
	"github.com/logweave/logweave/internal/kafkatest"
	"github.com/logweave/logweave/internal/kubetest"
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
	EnvFrom       []struct {
		ConfigMapRef *struct{ Name string } `yaml:"configMapRef"`
	} `yaml:"envFrom"`
	Env []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			FieldRef struct {
				FieldPath string `yaml:"fieldPath"`
			} `yaml:"fieldRef"`
			SecretKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	VolumeMounts    []k8sMount   `yaml:"volumeMounts"`
	SecurityContext *k8sSecurity `yaml:"securityContext"`
}

type k8sMount struct {
	Name      string `yaml:"name"`
	MountPath string `yaml:"mountPath"`
	ReadOnly  bool   `yaml:"readOnly"`
}

type k8sVolume struct {
	Name      string                 `yaml:"name"`
	EmptyDir  *struct{}              `yaml:"emptyDir"`
	HostPath  *struct{ Path string } `yaml:"hostPath"`
	ConfigMap *struct{ Name string } `yaml:"configMap"`
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
				SecurityContext              *k8sSecurity   `yaml:"securityContext"`
				AutomountServiceAccountToken *bool          `yaml:"automountServiceAccountToken"`
				InitContainers               []k8sContainer `yaml:"initContainers"`
				Containers                   []k8sContainer `yaml:"containers"`
				Volumes                      []k8sVolume    `yaml:"volumes"`
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
	images           map[string]string            // logweave/NAME -> the test's image
	hostPaths        map[string]string            // a hostPath volume's path -> this machine's
	env              map[string]string            // added to every container
	configMaps       map[string]map[string]string // keys replaced in a ConfigMap (where Kafka and Elasticsearch are)
	aliases          []string                     // DNS names of the pod's containers (its Service's)
	api              *kubetest.APIServer          // for a pod with a service account token
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
			for k, v := range p.configMaps[doc.Metadata.Name] {
				if _, ok := doc.Data[k]; !ok {
					t.Fatalf("configmap %s has no %s to replace", doc.Metadata.Name, k)
				}
				doc.Data[k] = v
			}
		case doc.Kind == p.kind && doc.Metadata.Name == p.name:
			spec = &docs[i]
		}
	}
	if spec == nil {
		t.Fatalf("%s: no %s %s", p.file, p.kind, p.name)
	}
	ps := spec.Spec.Template.Spec
	if a := ps.AutomountServiceAccountToken; a == nil || *a {
		// As the kubelet does: the account's token and CA, and where the
		// API server is, in every container.
		if p.api == nil {
			t.Fatalf("%s mounts a service account token: give it an API server", p.name)
		}
		if p.env == nil {
			p.env = map[string]string{}
		}
		p.env["KUBERNETES_SERVICE_HOST"], p.env["KUBERNETES_SERVICE_PORT"] = p.api.Host(), p.api.Port()
		ps.Volumes = append(ps.Volumes, k8sVolume{Name: "kube-api-access", HostPath: &struct{ Path string }{"kube-api-access"}})
		if p.hostPaths == nil {
			p.hostPaths = map[string]string{}
		}
		p.hostPaths["kube-api-access"] = p.api.Dir()
		for i := range ps.Containers {
			ps.Containers[i].VolumeMounts = append(ps.Containers[i].VolumeMounts, k8sMount{"kube-api-access", "/var/run/secrets/kubernetes.io/serviceaccount", true})
		}
	}
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
	// Init containers in order (each to completion, but native sidecars,
	// which keep running), then the containers.
	n := len(ps.InitContainers)
	for i, c := range append(ps.InitContainers, ps.Containers...) {
		toCompletion := i < n && c.RestartPolicy != "Always"
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
		for _, ef := range c.EnvFrom {
			if ef.ConfigMapRef == nil {
				t.Fatalf("%s: envFrom other than a ConfigMap", c.Name)
			}
			cm, ok := configMaps[ef.ConfigMapRef.Name]
			if !ok {
				t.Fatalf("%s: envFrom configmap %s is not in %s", c.Name, ef.ConfigMapRef.Name, p.file)
			}
			for k, v := range cm {
				args = append(args, "-e", k+"="+v)
			}
		}
		for _, e := range c.Env {
			val := e.Value
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				// The Secret the user creates (kubectl create secret
				// generic logweave-token ...): one value for every pod.
				val = "k8s-test-secret-" + e.ValueFrom.SecretKeyRef.Name + "-" + e.ValueFrom.SecretKeyRef.Key
			} else if e.ValueFrom != nil {
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
		if i >= n {
			for _, a := range p.aliases {
				args = append(args, "--network-alias", a)
			}
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
		name := p.podName + "-" + c.Name + "-" + d.suffix
		if toCompletion {
			if out, err := exec.Command("docker", append(append([]string{"run", "--rm", "--name", name, "--network", d.net}, args...), c.Args...)...).CombinedOutput(); err != nil {
				t.Fatalf("init container %s: %v\n%s", c.Name, err, out)
			}
			continue
		}
		d.start(name, append(args, c.Args...)...)
	}
}

func images(collector, shipper, demoService string) map[string]string {
	return map[string]string{"logweave/collector": collector, "logweave/shipper": shipper, "logweave/demo-service": demoService}
}

// deploy/kubernetes on one Docker node: the collector's pod (its init
// container runs `collector setup`) with Kafka and Elasticsearch stand-ins
// where its ConfigMap says they are, reached by the Service's names; the
// DaemonSet's shipper on a node whose runtime is Docker (/var/log/pods
// holds links to the containers' json-file logs, as cri-dockerd makes
// them), as root without capabilities on a read-only root, its
// checkpoints on the node; and the sidecar example's pod. A request to
// each app becomes a trace in Elasticsearch, with the pod's metadata.
func TestKubernetesManifestsOnADockerNode(t *testing.T) {
	if !deploytest.DockerAvailable() {
		t.Skip("no Docker daemon answers `docker info` (the project's machines and CI have one)")
	}
	root := strings.TrimSpace(run(t, "docker", "info", "--format", "{{.DockerRootDir}}"))
	if driver := strings.TrimSpace(run(t, "docker", "info", "--format", "{{.LoggingDriver}}")); driver != "json-file" {
		t.Fatalf("the daemon's default log driver is %s; this node stands for one whose pods log to json-file", driver)
	}
	collectorImg, shipperImg, serviceImg := buildImages(t)
	imgs := images(collectorImg, shipperImg, serviceImg)
	d := newDockerNet(t)

	// Kafka and Elasticsearch where the containers reach them: the
	// network's gateway, an address of this machine.
	gw := strings.TrimSpace(run(t, "docker", "network", "inspect", "--format", "{{(index .IPAM.Config 0).Gateway}}", d.net))
	k := kafkatest.StartOn(t, 6, gw)
	es, err := estest.NewOn(gw)
	if err != nil {
		t.Fatal(err)
	}
	defer es.Close()
	runPod(t, d, pod{file: "collector.yaml", kind: "Deployment", name: "logweave-collector", podName: "logweave-collector-6f8b9-abcde", images: imgs,
		configMaps: map[string]map[string]string{"logweave-collector-env": {"KAFKA_BROKERS": strings.Join(k.Brokers, ","), "ELASTICSEARCH_URL": es.URL}},
		aliases:    []string{"logweave-collector", "logweave-collector.logweave.svc"}})
	coll := "logweave-collector-6f8b9-abcde-collector-" + d.suffix
	if _, ok := es.Template("logweave-logs"); !ok {
		t.Errorf("the setup init container installed no index template logweave-logs")
	}

	// An app on the node, logging to stdout through json-file.
	app := "payments-" + d.suffix
	d.start(app, serviceImg, "-name", "payments", "-listen", ":8080")
	id := strings.TrimSpace(run(t, "docker", "inspect", "--format", "{{.Id}}", app))
	pods := t.TempDir()
	podDir := filepath.Join(pods, "shop_payments-7d9f8_0a1b2c3d", "payments")
	os.MkdirAll(podDir, 0o755)
	if err := os.Symlink(filepath.Join(root, "containers", id, id+"-json.log"), filepath.Join(podDir, "0.log")); err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	api := kubetest.NewOn(t, gw, map[string]string{"shop/payments-7d9f8": `{"metadata":{"name":"payments-7d9f8","namespace":"shop","uid":"0a1b2c3d","annotations":{"logweave.io/multiline":"java"}}}`})
	runPod(t, d, pod{file: "shipper-daemonset.yaml", kind: "DaemonSet", name: "logweave-shipper", podName: "logweave-shipper-x7k2p", node: "node-7", images: imgs,
		hostPaths: map[string]string{"/var/log/pods": pods, "/var/lib/docker/containers": filepath.Join(root, "containers"), "/var/lib/logweave-shipper": state},
		api:       api})

	// The sidecar example.
	runPod(t, d, pod{file: "sidecar-example.yaml", kind: "Deployment", name: "payments", podName: "payments-5c7d9-q2w4e", images: imgs})
	sidecarApp := "payments-5c7d9-q2w4e-payments-" + d.suffix

	nodeReq := deploytest.Request(t, "http://"+containerIP(t, app)+":8080/pay")
	sidecarReq := deploytest.Request(t, "http://"+containerIP(t, sidecarApp)+":8080/pay")
	for _, e := range gjson.GetBytes(waitTrace(t, d, coll, nodeReq, 2), "events").Array() {
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
	// The shipper asked the API server for the pod's annotations, with the
	// token and CA its service account mounts.
	if n := api.Gets.Load(); n != 1 {
		t.Errorf("the shipper asked the API server %d times for the one pod, want once", n)
	}
	if b, err := os.ReadFile(filepath.Join(state, "checkpoints.json")); err != nil || !strings.Contains(string(b), "/var/log/pods/") {
		t.Errorf("checkpoints on the node: %v %s", err, b)
	}
	for _, e := range gjson.GetBytes(waitTrace(t, d, coll, sidecarReq, 2), "events").Array() {
		if field(e, "service.name") != "payments" || field(e, "host.name") != "payments-5c7d9-q2w4e" || !strings.HasPrefix(field(e, "log.file.path"), "/var/log/app/") {
			t.Errorf("sidecar event: %s", e.Raw)
		}
	}
	// The sidecar's app writes its log to the file only: the DaemonSet
	// tailing its stdout would ship every line twice.
	if logs := run(t, "docker", "logs", sidecarApp); strings.Contains(logs, sidecarReq) {
		t.Errorf("the app logged the request to stdout too:\n%s", logs)
	}
	if n := len(es.IndicesMatching("traces-*")); n == 0 {
		t.Error("no traces index in Elasticsearch")
	}
}

func containerIP(t *testing.T, name string) string {
	t.Helper()
	return strings.TrimSpace(run(t, "docker", "inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name))
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
