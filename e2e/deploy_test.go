package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"

	"github.com/logweave/logweave/collector"
	"github.com/logweave/logweave/pipeline"
	"github.com/logweave/logweave/shipper"
)

// The compose stack's services mount configuration files that exist and
// validate, with the environment the stack gives them.
func TestComposeStackConfigs(t *testing.T) {
	dir := "../deploy/compose"
	data, err := os.ReadFile(filepath.Join(dir, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var stack struct {
		Services map[string]struct {
			Image       string            `yaml:"image"`
			Environment map[string]string `yaml:"environment"`
			Volumes     []string          `yaml:"volumes"`
			Build       struct {
				Context    string `yaml:"context"`
				Dockerfile string `yaml:"dockerfile"`
				Target     string `yaml:"target"`
			} `yaml:"build"`
			DependsOn map[string]struct {
				Condition string `yaml:"condition"`
			} `yaml:"depends_on"`
			Healthcheck struct {
				Test []string `yaml:"test"`
			} `yaml:"healthcheck"`
			Logging struct {
				Driver  string            `yaml:"driver"`
				Options map[string]string `yaml:"options"`
			} `yaml:"logging"`
		} `yaml:"services"`
		Volumes map[string]any `yaml:"volumes"`
	}
	if err := yaml.Unmarshal(data, &stack); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"kafka", "elasticsearch", "kibana", "setup", "collector", "shipper", "gateway", "orders", "payments", "payments-shipper"} {
		if _, ok := stack.Services[name]; !ok {
			t.Fatalf("service %s missing", name)
		}
	}
	// It converges without races: what others wait for has a health check,
	// and the collector starts once the one-shot setup succeeded.
	for name, svc := range stack.Services {
		for dep, c := range svc.DependsOn {
			other, ok := stack.Services[dep]
			switch {
			case !ok:
				t.Errorf("%s depends on unknown service %s", name, dep)
			case c.Condition == "service_healthy" && len(other.Healthcheck.Test) == 0:
				t.Errorf("%s waits for %s to be healthy, which has no health check", name, dep)
			}
		}
	}
	if stack.Services["collector"].DependsOn["setup"].Condition != "service_completed_successfully" ||
		stack.Services["setup"].DependsOn["kibana"].Condition != "service_healthy" {
		t.Error("collector must wait for setup, setup for Kibana")
	}
	// The services log through the gelf driver to the shipper's published port.
	for _, name := range []string{"gateway", "orders"} {
		lg := stack.Services[name].Logging
		if lg.Driver != "gelf" || !strings.HasSuffix(lg.Options["gelf-address"], ":12201") {
			t.Errorf("%s: logging %+v", name, lg)
		}
	}
	checked := 0
	for name, svc := range stack.Services {
		if svc.Build.Dockerfile != "" {
			df, err := os.ReadFile(filepath.Join(dir, svc.Build.Context, svc.Build.Dockerfile))
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if !strings.Contains(string(df), "AS "+svc.Build.Target) {
				t.Errorf("%s: Dockerfile has no stage %q", name, svc.Build.Target)
			}
		}
		for _, v := range svc.Volumes {
			parts := strings.Split(v, ":")
			src := parts[0]
			if !strings.HasPrefix(src, "./") {
				if _, ok := stack.Volumes[src]; !ok {
					t.Errorf("%s: volume %s is not declared", name, src)
				}
				continue
			}
			for k, val := range svc.Environment {
				t.Setenv(k, val)
			}
			var cfg pipeline.Validator
			switch {
			case strings.HasSuffix(parts[1], "collector.yaml"):
				cfg = collector.DefaultConfig()
			case strings.HasSuffix(parts[1], "shipper.yaml"):
				cfg = shipper.DefaultConfig()
			default:
				continue
			}
			if err := pipeline.LoadConfig(filepath.Join(dir, src), cfg); err != nil {
				t.Errorf("%s: %s: %v", name, src, err)
			}
			checked++
		}
	}
	if checked != 4 { // collector.yaml (setup, collector), shipper.yaml, shipper-sidecar.yaml
		t.Fatalf("checked %d mounted configs, want 4", checked)
	}
}

// The gateway's nginx configuration passes `nginx -t` (Debian's nginx,
// installed by .ci/run), with the upstream's compose host name replaced by
// an address this machine resolves and the log written to a file.
func TestComposeGatewayNginxConfig(t *testing.T) {
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		t.Skip("nginx is not installed (.ci/run installs it)")
	}
	conf, err := os.ReadFile("../deploy/compose/nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	s := strings.NewReplacer("http://orders:8080", "http://127.0.0.1:8080", "/dev/stdout", filepath.Join(dir, "access.log")).Replace(string(conf))
	for _, want := range []string{"proxy_set_header X-Request-ID $request_id", "limit_req_zone", "rate=10r/s", "escape=json", `"request_id":"$request_id"`, `"msec":"$msec"`} {
		if !strings.Contains(s, want) {
			t.Errorf("nginx.conf lacks %s", want)
		}
	}
	path := filepath.Join(dir, "nginx.conf")
	os.WriteFile(path, []byte(s), 0o644)
	if out, err := exec.Command(nginx, "-t", "-c", path, "-e", filepath.Join(dir, "error.log"), "-g", "pid "+filepath.Join(dir, "nginx.pid")+";").CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
}
