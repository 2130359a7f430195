// Package kubernetes_test checks the manifests in this folder: each file
// and the kustomization's output decode strictly into the Kubernetes API
// types (an unknown or misspelt field fails), the configurations the
// ConfigMaps carry validate with the environment each container has, and
// what they say agrees with the pods' ports, probes, volumes and the
// Service the shippers send to.
package kubernetes_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/kustomize/api/krusty"
	kusttypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/logweave/logweave/internal/deploytest"
)

// objects is a set of decoded manifests.
type objects struct {
	configMaps  map[string]*corev1.ConfigMap
	services    map[string]*corev1.Service
	deployments map[string]*appsv1.Deployment
	daemonSets  map[string]*appsv1.DaemonSet
	namespaces  map[string]*corev1.Namespace
	pdbs        map[string]*policyv1.PodDisruptionBudget
	accounts    map[string]*corev1.ServiceAccount
	roles       map[string]*rbacv1.ClusterRole
	bindings    map[string]*rbacv1.ClusterRoleBinding
}

// count is how many objects there are.
func (o *objects) count() int {
	return len(o.configMaps) + len(o.services) + len(o.deployments) + len(o.daemonSets) + len(o.namespaces) + len(o.pdbs) +
		len(o.accounts) + len(o.roles) + len(o.bindings)
}

// decode reads a multi-document YAML stream strictly into the API types
// of the kinds logweave ships.
func decode(t *testing.T, name string, data []byte) *objects {
	t.Helper()
	o, err := decodeAll(data)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return o
}

func decodeAll(data []byte) (*objects, error) {
	o := &objects{configMaps: map[string]*corev1.ConfigMap{}, services: map[string]*corev1.Service{},
		deployments: map[string]*appsv1.Deployment{}, daemonSets: map[string]*appsv1.DaemonSet{}, namespaces: map[string]*corev1.Namespace{},
		pdbs: map[string]*policyv1.PodDisruptionBudget{}, accounts: map[string]*corev1.ServiceAccount{},
		roles: map[string]*rbacv1.ClusterRole{}, bindings: map[string]*rbacv1.ClusterRoleBinding{}}
	for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(data), -1) {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		var obj metav1.Object
		switch tm.APIVersion + " " + tm.Kind {
		case "v1 ConfigMap":
			obj = &corev1.ConfigMap{}
		case "v1 Service":
			obj = &corev1.Service{}
		case "v1 Namespace":
			obj = &corev1.Namespace{}
		case "apps/v1 Deployment":
			obj = &appsv1.Deployment{}
		case "apps/v1 DaemonSet":
			obj = &appsv1.DaemonSet{}
		case "policy/v1 PodDisruptionBudget":
			obj = &policyv1.PodDisruptionBudget{}
		case "v1 ServiceAccount":
			obj = &corev1.ServiceAccount{}
		case "rbac.authorization.k8s.io/v1 ClusterRole":
			obj = &rbacv1.ClusterRole{}
		case "rbac.authorization.k8s.io/v1 ClusterRoleBinding":
			obj = &rbacv1.ClusterRoleBinding{}
		default:
			return nil, fmt.Errorf("document %d: unexpected %s %s", i, tm.APIVersion, tm.Kind)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
			return nil, fmt.Errorf("%s %s does not decode strictly: %w", tm.Kind, obj.GetName(), err)
		}
		if obj.GetName() == "" {
			return nil, fmt.Errorf("document %d: %s without a name", i, tm.Kind)
		}
		switch v := obj.(type) {
		case *corev1.ConfigMap:
			o.configMaps[v.Name] = v
		case *corev1.Service:
			o.services[v.Name] = v
		case *corev1.Namespace:
			o.namespaces[v.Name] = v
		case *appsv1.Deployment:
			o.deployments[v.Name] = v
		case *appsv1.DaemonSet:
			o.daemonSets[v.Name] = v
		case *policyv1.PodDisruptionBudget:
			o.pdbs[v.Name] = v
		case *corev1.ServiceAccount:
			o.accounts[v.Name] = v
		case *rbacv1.ClusterRole:
			o.roles[v.Name] = v
		case *rbacv1.ClusterRoleBinding:
			o.bindings[v.Name] = v
		}
	}
	return o, nil
}

func stripComments(doc string) string {
	return regexp.MustCompile(`(?m)^\s*#.*$`).ReplaceAllString(doc, "")
}

// kustomization decodes kustomization.yaml strictly.
func kustomization(t *testing.T) *kusttypes.Kustomization {
	t.Helper()
	data, err := os.ReadFile("kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var k kusttypes.Kustomization
	if err := yaml.UnmarshalStrict(data, &k); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	return &k
}

// build is `kubectl apply -k .`'s input: the kustomization rendered by
// the kustomize library kubectl embeds.
func build(t *testing.T) *objects {
	t.Helper()
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), ".")
	if err != nil {
		t.Fatalf("kustomize build: %v", err)
	}
	out, err := m.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	return decode(t, "kustomize build", out)
}

// Every manifest file decodes strictly, the kustomization lists every one
// of them, and its output is the same objects in the logweave namespace,
// labelled, with the images it names.
func TestManifestsDecodeStrictly(t *testing.T) {
	k := kustomization(t)
	files, _ := filepath.Glob("*.yaml")
	var manifests []string
	total := 0
	for _, f := range files {
		if f == "kustomization.yaml" {
			continue
		}
		manifests = append(manifests, f)
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		o := decode(t, f, data)
		total += o.count()
	}
	slices.Sort(manifests)
	res := slices.Clone(k.Resources)
	slices.Sort(res)
	if !slices.Equal(manifests, res) {
		t.Errorf("kustomization resources %v, files %v", res, manifests)
	}
	b := build(t)
	if got := b.count(); got != total {
		t.Errorf("kustomize build has %d objects, the files %d", got, total)
	}
	for _, name := range []string{"logweave-collector", "logweave-collector-env", "logweave-shipper", "logweave-shipper-sidecar"} {
		cm := b.configMaps[name]
		if cm == nil || cm.Namespace != k.Namespace || cm.Labels["app.kubernetes.io/part-of"] != "logweave" {
			t.Errorf("configmap %s after kustomize: %+v", name, cm)
		}
	}
	if _, ok := b.namespaces[k.Namespace]; !ok {
		t.Errorf("namespace %s is not created", k.Namespace)
	}
	images := map[string]bool{}
	for _, img := range k.Images {
		images[img.Name] = true
	}
	for _, spec := range podSpecs(b) {
		for _, c := range allContainers(spec.PodSpec) {
			name, _, _ := strings.Cut(c.Image, ":")
			if !images[name] {
				t.Errorf("%s/%s: image %s is not in the kustomization's images", spec.name, c.Name, c.Image)
			}
			if !regexp.MustCompile(`^logweave/(collector|shipper|demo-service):`).MatchString(c.Image) {
				t.Errorf("%s/%s: image %s is not one make images builds", spec.name, c.Name, c.Image)
			}
		}
	}
}

type namedSpec struct {
	name string
	*corev1.PodSpec
	labels map[string]string
}

func podSpecs(o *objects) []namedSpec {
	var out []namedSpec
	for n, d := range o.deployments {
		out = append(out, namedSpec{"deployment/" + n, &d.Spec.Template.Spec, d.Spec.Template.Labels})
	}
	for n, d := range o.daemonSets {
		out = append(out, namedSpec{"daemonset/" + n, &d.Spec.Template.Spec, d.Spec.Template.Labels})
	}
	return out
}

// checkedPod is the pod template of a workload ("deployment/NAME",
// "daemonset/NAME"), which must exist, after the checks every logweave
// pod passes.
func checkedPod(t *testing.T, o *objects, name string) namedSpec {
	t.Helper()
	for _, s := range podSpecs(o) {
		if s.name == name {
			checkPod(t, s)
			if s.AutomountServiceAccountToken == nil || *s.AutomountServiceAccountToken {
				checkOnlyGetsPods(t, o, s)
			}
			return s
		}
	}
	t.Fatalf("%s missing", name)
	return namedSpec{}
}

func allContainers(s *corev1.PodSpec) []corev1.Container {
	return append(slices.Clone(s.InitContainers), s.Containers...)
}

// env is what a container's ${VAR} expands from: its env (a fieldRef
// stands for a value the kubelet fills) and its envFrom ConfigMaps.
func env(t *testing.T, o *objects, c corev1.Container) map[string]string {
	out := map[string]string{}
	for _, ef := range c.EnvFrom {
		if ef.ConfigMapRef == nil {
			continue
		}
		cm := o.configMaps[ef.ConfigMapRef.Name]
		if cm == nil {
			t.Errorf("%s: envFrom configmap %s does not exist", c.Name, ef.ConfigMapRef.Name)
			continue
		}
		for k, v := range cm.Data {
			out[ef.Prefix+k] = v
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil:
			out[e.Name] = "from-" + e.ValueFrom.FieldRef.FieldPath
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			out[e.Name] = "secret-" + e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
		case e.ValueFrom == nil:
			out[e.Name] = e.Value
		}
	}
	return out
}

// mountOf is the container's volume mount at (or above) path and its
// volume.
func mountOf(spec *corev1.PodSpec, c corev1.Container, path string) (*corev1.VolumeMount, *corev1.Volume) {
	var best *corev1.VolumeMount
	for i, m := range c.VolumeMounts {
		if (path == m.MountPath || strings.HasPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/")) && (best == nil || len(m.MountPath) > len(best.MountPath)) {
			best = &c.VolumeMounts[i]
		}
	}
	if best == nil {
		return nil, nil
	}
	for i, v := range spec.Volumes {
		if v.Name == best.Name {
			return best, &spec.Volumes[i]
		}
	}
	return best, nil
}

func argAfter(args []string, name string) string {
	if i := slices.Index(args, name); i >= 0 && i+1 < len(args) {
		return args[i+1]
	}
	return ""
}

// config is the file a logweave container reads (-config) from its
// ConfigMap volume.
func config(t *testing.T, o *objects, spec *corev1.PodSpec, c corev1.Container) []byte {
	t.Helper()
	path := argAfter(c.Args, "-config")
	if path == "" {
		t.Fatalf("%s: no -config in %v", c.Name, c.Args)
	}
	m, v := mountOf(spec, c, path)
	if m == nil || v == nil || v.ConfigMap == nil {
		t.Fatalf("%s: %s is not on a ConfigMap volume", c.Name, path)
	}
	if !m.ReadOnly {
		t.Errorf("%s: the configuration is mounted writable", c.Name)
	}
	cm := o.configMaps[v.ConfigMap.Name]
	if cm == nil {
		t.Fatalf("%s: configmap %s does not exist", c.Name, v.ConfigMap.Name)
	}
	data, ok := cm.Data[strings.TrimPrefix(path, m.MountPath+"/")]
	if !ok {
		t.Fatalf("%s: configmap %s has no %s", c.Name, cm.Name, filepath.Base(path))
	}
	return []byte(data)
}

func containerPort(t *testing.T, c corev1.Container, port intstr.IntOrString) int {
	t.Helper()
	for _, p := range c.Ports {
		if (port.Type == intstr.String && p.Name == port.StrVal) || (port.Type == intstr.Int && p.ContainerPort == port.IntVal) {
			return int(p.ContainerPort)
		}
	}
	t.Errorf("%s: no container port %s", c.Name, port.String())
	return 0
}

// probes: liveness on /healthz and readiness on /readyz, on the port the
// configuration listens on.
func checkProbes(t *testing.T, c corev1.Container, listen string, liveness bool) {
	t.Helper()
	want, err := deploytest.Port(listen)
	if err != nil {
		t.Errorf("%s: http.listen %q: %v", c.Name, listen, err)
		return
	}
	probes := map[string]*corev1.Probe{"/readyz": c.ReadinessProbe}
	if liveness {
		probes["/healthz"] = c.LivenessProbe
	}
	for path, p := range probes {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != path {
			t.Errorf("%s: no probe on %s: %+v", c.Name, path, p)
			continue
		}
		if got := containerPort(t, c, p.HTTPGet.Port); got != want {
			t.Errorf("%s: %s probed on %d, http.listen is %s", c.Name, path, got, listen)
		}
	}
}

func quantity(s string) resource.Quantity { return resource.MustParse(s) }

func equalQuantity(l corev1.ResourceList, name corev1.ResourceName, want string) bool {
	q, ok := l[name]
	return ok && q.Cmp(quantity(want)) == 0
}

// Pod-level checks every logweave pod must pass: volumes mounted exist,
// writable paths are on writable volumes (root filesystems are read-only),
// and nothing runs privileged.
func checkPod(t *testing.T, s namedSpec) {
	t.Helper()
	if (s.AutomountServiceAccountToken == nil || *s.AutomountServiceAccountToken) && s.ServiceAccountName == "" {
		t.Errorf("%s mounts the default service account's token; a pod that uses the API has its own account", s.name)
	}
	vols := map[string]bool{}
	for _, v := range s.Volumes {
		vols[v.Name] = true
	}
	for _, c := range allContainers(s.PodSpec) {
		for _, m := range c.VolumeMounts {
			if !vols[m.Name] {
				t.Errorf("%s/%s mounts volume %s, which the pod does not have", s.name, c.Name, m.Name)
			}
		}
		sc := c.SecurityContext
		if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || (sc.Privileged != nil && *sc.Privileged) {
			t.Errorf("%s/%s: want a read-only root, no privilege escalation, all capabilities dropped: %+v", s.name, c.Name, sc)
		}
	}
}

// checkOnlyGetsPods: the pod's service account exists, in its namespace,
// and what its bindings grant is reading one pod at a time (get pods),
// nothing more.
func checkOnlyGetsPods(t *testing.T, o *objects, s namedSpec) {
	t.Helper()
	ns := ""
	if d := o.daemonSets[strings.TrimPrefix(s.name, "daemonset/")]; d != nil {
		ns = d.Namespace
	}
	if sa := o.accounts[s.ServiceAccountName]; sa == nil || sa.Namespace != ns {
		t.Fatalf("%s: service account %q is not in the manifests (in namespace %q)", s.name, s.ServiceAccountName, ns)
	}
	var granted []rbacv1.PolicyRule
	for _, b := range o.bindings {
		for _, sub := range b.Subjects {
			if sub.Kind == "ServiceAccount" && sub.Name == s.ServiceAccountName && sub.Namespace == ns {
				r := o.roles[b.RoleRef.Name]
				if b.RoleRef.Kind != "ClusterRole" || r == nil {
					t.Fatalf("%s: binding %s names role %s %s, not in the manifests", s.name, b.Name, b.RoleRef.Kind, b.RoleRef.Name)
				}
				granted = append(granted, r.Rules...)
			}
		}
	}
	want := []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get"}}}
	if fmt.Sprint(granted) != fmt.Sprint(want) {
		t.Errorf("%s: its account is granted %+v, want only %+v", s.name, granted, want)
	}
}

// selects: a label selector (as a map) matches these labels; an empty one
// selects nothing (as a Service's would select no pod of ours).
func selects(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return len(sel) > 0
}

func TestCollectorDeploymentAndService(t *testing.T) {
	o := build(t)
	spec := checkedPod(t, o, "deployment/logweave-collector")
	d, svc := o.deployments["logweave-collector"], o.services["logweave-collector"]
	if svc == nil {
		t.Fatal("collector Service missing")
	}
	sel, err := metav1.LabelSelectorAsMap(d.Spec.Selector)
	if err != nil {
		t.Fatal(err)
	}
	if !selects(sel, d.Spec.Template.Labels) {
		t.Errorf("the Deployment's selector %v does not select its pods %v", sel, d.Spec.Template.Labels)
	}
	var run *corev1.Container
	setup := false
	for i, c := range allContainers(spec.PodSpec) {
		cfg, err := deploytest.Collector(config(t, o, spec.PodSpec, c), env(t, o, c))
		if err != nil {
			t.Errorf("%s: collector validate: %v", c.Name, err)
			continue
		}
		if cfg.HTTP.Token != tokenSecret {
			t.Errorf("%s: http.token %q is not the Secret's: the collector would take events from anyone in the cluster", c.Name, cfg.HTTP.Token)
		}
		switch {
		case len(c.Args) > 0 && c.Args[0] == "setup":
			setup = i < len(spec.InitContainers)
		case len(c.Args) > 0 && c.Args[0] == "run":
			run = &spec.Containers[i-len(spec.InitContainers)]
			checkProbes(t, c, cfg.HTTP.Listen, true)
			port, _ := deploytest.Port(cfg.HTTP.Listen)
			// The Service reaches the ingest port.
			if !selects(svc.Spec.Selector, d.Spec.Template.Labels) {
				t.Errorf("the Service's selector %v does not select the collector %v", svc.Spec.Selector, d.Spec.Template.Labels)
			}
			if len(svc.Spec.Ports) == 0 || containerPort(t, c, svc.Spec.Ports[0].TargetPort) != port {
				t.Errorf("the Service does not reach the collector's http.listen %s", cfg.HTTP.Listen)
			}
			if len(cfg.Kafka.Brokers) == 0 && *d.Spec.Replicas > 1 {
				t.Error("replicas > 1 need Kafka: the disk buffer is one process's")
			}
			if m, v := mountOf(spec.PodSpec, c, cfg.Buffer.Path); m == nil || v == nil || m.ReadOnly {
				t.Errorf("buffer.path %s is not on a writable volume", cfg.Buffer.Path)
			}
		}
	}
	if run == nil || !setup {
		t.Fatal("want a `collector setup` init container and a `collector run` container")
	}
	// Drains keep one collector: the budget selects its pods and allows
	// fewer than all of them to go.
	pdb := o.pdbs["logweave-collector"]
	if pdb == nil || pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() < 1 || pdb.Spec.MinAvailable.IntValue() >= int(*d.Spec.Replicas) {
		t.Fatalf("want a PodDisruptionBudget keeping 1..replicas-1 collectors: %+v", pdb)
	}
	pdbSel, _ := metav1.LabelSelectorAsMap(pdb.Spec.Selector)
	if !selects(pdbSel, d.Spec.Template.Labels) {
		t.Errorf("the budget's selector %v does not select the collector %v", pdbSel, d.Spec.Template.Labels)
	}
}

func TestShipperDaemonSet(t *testing.T) {
	o := build(t)
	spec := checkedPod(t, o, "daemonset/logweave-shipper")
	ds := o.daemonSets["logweave-shipper"]
	// It runs on every node: a toleration without a key tolerates every taint.
	every := false
	for _, tol := range spec.Tolerations {
		if tol.Key == "" && tol.Operator == corev1.TolerationOpExists && tol.Effect == "" {
			every = true
		}
	}
	if !every {
		t.Errorf("tolerations %+v do not tolerate every taint", spec.Tolerations)
	}
	if len(spec.Containers) != 1 {
		t.Fatalf("%d containers", len(spec.Containers))
	}
	c := spec.Containers[0]
	if !equalQuantity(c.Resources.Requests, corev1.ResourceCPU, "100m") || !equalQuantity(c.Resources.Requests, corev1.ResourceMemory, "128Mi") {
		t.Errorf("requests %v, want cpu 100m memory 128Mi", c.Resources.Requests)
	}
	// The node's container logs, read-only.
	for _, p := range []string{"/var/log/pods", "/var/lib/docker/containers"} {
		m, v := mountOf(spec.PodSpec, c, p)
		if m == nil || v == nil || v.HostPath == nil || v.HostPath.Path != p || m.MountPath != p || !m.ReadOnly {
			t.Errorf("%s is not the node's, read-only: %+v %+v", p, m, v)
		}
	}
	cfg, err := deploytest.Shipper(config(t, o, spec.PodSpec, c), env(t, o, c))
	if err != nil {
		t.Fatalf("shipper validate: %v", err)
	}
	checkProbes(t, c, cfg.HTTP.Listen, true)
	if mounted := spec.AutomountServiceAccountToken != nil && *spec.AutomountServiceAccountToken; !cfg.Kubernetes.Annotations || !mounted {
		t.Errorf("kubernetes.annotations %v with a service account token mounted %v: want both (pods' multiline annotations)", cfg.Kubernetes.Annotations, mounted)
	}
	if cfg.Host.Name != "from-spec.nodeName" {
		t.Errorf("host.name %q, want the node's name", cfg.Host.Name)
	}
	// Checkpoints on the node, so a restarted shipper resumes.
	if m, v := mountOf(spec.PodSpec, c, cfg.State.Path); m == nil || v == nil || v.HostPath == nil || m.ReadOnly {
		t.Errorf("state.path %s is not on a writable hostPath", cfg.State.Path)
	}
	// The inputs read what is mounted: pod logs of any runtime.
	if len(cfg.Inputs) == 0 {
		t.Fatal("no inputs")
	}
	for _, in := range cfg.Inputs {
		if in.Type != "file" || in.Format != "auto" {
			t.Errorf("input %+v: want type file, format auto", in.Type)
		}
		for _, glob := range in.Paths {
			if ok, _ := filepath.Match(glob, "/var/log/pods/shop_orders-7d9f_0a1b/orders/0.log"); !ok {
				t.Errorf("%s does not match a pod's log file", glob)
			}
		}
	}
	checkSendsToCollector(t, o, cfg.Collector.URLs, ds.Namespace)
	if cfg.Collector.Token != tokenSecret {
		t.Errorf("shipper: collector.token %q is not the Secret the collector requires", cfg.Collector.Token)
	}
}

// tokenSecret is what env() makes of the Secret that holds http.token.
const tokenSecret = "secret-logweave-token/token"

// checkSendsToCollector: the URLs name the collector's Service (short name
// in its namespace, or name.namespace.svc) and its port.
func checkSendsToCollector(t *testing.T, o *objects, urls []string, from string) {
	t.Helper()
	svc := o.services["logweave-collector"]
	if svc == nil || len(urls) == 0 {
		t.Fatal("no collector Service or no collector.urls")
	}
	for _, u := range urls {
		host, port, err := deploytest.HostPort(u)
		if err != nil {
			t.Fatal(err)
		}
		ok := (host == svc.Name && from == svc.Namespace) || strings.HasPrefix(host, svc.Name+"."+svc.Namespace+".svc")
		if !ok || port != int(svc.Spec.Ports[0].Port) {
			t.Errorf("collector.urls %s is not the Service %s.%s:%d", u, svc.Name, svc.Namespace, svc.Spec.Ports[0].Port)
		}
	}
}

func TestSidecarExample(t *testing.T) {
	o := build(t)
	spec := checkedPod(t, o, "deployment/payments") // the sidecar example
	d := o.deployments["payments"]
	var app, shipper *corev1.Container
	for i, c := range allContainers(spec.PodSpec) {
		switch {
		case strings.HasPrefix(c.Image, "logweave/shipper:"):
			shipper = &allContainers(spec.PodSpec)[i]
			// A native sidecar: started first, stopped last.
			if i >= len(spec.InitContainers) || c.RestartPolicy == nil || *c.RestartPolicy != corev1.ContainerRestartPolicyAlways {
				t.Errorf("the shipper is not a native sidecar (init container, restartPolicy Always)")
			}
		case strings.HasPrefix(c.Image, "logweave/demo-service:"):
			app = &allContainers(spec.PodSpec)[i]
		}
	}
	if app == nil || shipper == nil {
		t.Fatal("want an app and a shipper container")
	}
	for _, r := range []corev1.ResourceList{shipper.Resources.Limits} {
		if !equalQuantity(r, corev1.ResourceCPU, "100m") || !equalQuantity(r, corev1.ResourceMemory, "128Mi") {
			t.Errorf("shipper limits %v, want cpu 100m memory 128Mi", r)
		}
	}
	cfg, err := deploytest.Shipper(config(t, o, spec.PodSpec, *shipper), env(t, o, *shipper))
	if err != nil {
		t.Fatalf("shipper validate: %v", err)
	}
	checkProbes(t, *shipper, cfg.HTTP.Listen, true)
	if m, v := mountOf(spec.PodSpec, *shipper, cfg.State.Path); m == nil || v == nil || m.ReadOnly {
		t.Errorf("state.path %s is not on a writable volume", cfg.State.Path)
	}
	// The app writes its log file into an emptyDir the shipper tails.
	logFile := argAfter(app.Args, "-log-file")
	am, av := mountOf(spec.PodSpec, *app, logFile)
	if logFile == "" || am == nil || av == nil || av.EmptyDir == nil || am.ReadOnly {
		t.Fatalf("the app's -log-file %q is not on a writable emptyDir", logFile)
	}
	read := false
	for _, in := range cfg.Inputs {
		for _, glob := range in.Paths {
			sm, _ := mountOf(spec.PodSpec, *shipper, filepath.Dir(glob))
			// The same file seen from the shipper's mount of that volume.
			if sm == nil || sm.Name != am.Name {
				continue
			}
			if ok, _ := filepath.Match(glob, filepath.Join(sm.MountPath, strings.TrimPrefix(logFile, am.MountPath))); ok {
				read = true
			}
		}
	}
	if !read {
		t.Errorf("no input of the sidecar reads %s", logFile)
	}
	checkSendsToCollector(t, o, cfg.Collector.URLs, d.Namespace)
	if cfg.Collector.Token != tokenSecret {
		t.Errorf("sidecar: collector.token %q is not the Secret the collector requires", cfg.Collector.Token)
	}
	if svc := o.services["payments"]; svc == nil || containerPort(t, *app, svc.Spec.Ports[0].TargetPort) == 0 {
		t.Error("payments has no Service reaching it")
	}
}

// Strict decoding fails on what a lax one would let through to the API
// server (which would drop it silently or refuse it).
func TestStrictDecodingCatchesMistakes(t *testing.T) {
	for name, doc := range map[string]string{
		"misspelt field":  "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {selectr: {a: b}}\n",
		"misplaced field": "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: x}\nspec: {template: {spec: {containers: [{name: a, image: b, readOnly: true}]}}}\n",
		"unknown kind":    "apiVersion: v1\nkind: Secrett\nmetadata: {name: x}\n",
		"duplicate key":   "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: b, a: c}\n",
		"wrong type":      "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {ports: [{port: http}]}\n",
	} {
		if _, err := decodeAll([]byte(doc)); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
	if _, err := decodeAll([]byte("apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {ports: [{port: 80}]}\n")); err != nil {
		t.Fatalf("a good manifest: %v", err)
	}
}
