package e2e

import (
	"os"
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
		} `yaml:"services"`
		Volumes map[string]any `yaml:"volumes"`
	}
	if err := yaml.Unmarshal(data, &stack); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"elasticsearch", "kibana", "collector", "shipper"} {
		if _, ok := stack.Services[name]; !ok {
			t.Fatalf("service %s missing", name)
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
	if checked != 2 {
		t.Fatalf("checked %d mounted configs, want 2", checked)
	}
}
