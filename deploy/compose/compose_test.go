// Package compose_test checks the docker-compose stack in this folder the
// way `docker compose` reads it (compose-go, the library the Docker CLI
// uses): every service's image, ports, volumes, environment and command
// agree with the logweave configurations it mounts and with the services
// it talks to, and `docker compose up` can converge.
package compose_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/logweave/logweave/collector"
	"github.com/logweave/logweave/internal/deploytest"
)

func load(t *testing.T) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{"docker-compose.yml"}, cli.WithWorkingDirectory("."), cli.WithName("logweave"),
		cli.WithEnv([]string{"LOGWEAVE_TOKEN=" + testToken}))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("compose-go cannot load docker-compose.yml: %v", err)
	}
	return p
}

// Without LOGWEAVE_TOKEN the stack does not start open: compose refuses it
// and says what to set.
func TestComposeNeedsAToken(t *testing.T) {
	opts, err := cli.NewProjectOptions([]string{"docker-compose.yml"}, cli.WithWorkingDirectory("."), cli.WithName("logweave"),
		cli.WithEnv([]string{"LOGWEAVE_TOKEN="}))
	if err != nil {
		t.Fatal(err)
	}
	_, err = opts.LoadProject(context.Background())
	if err == nil || !strings.Contains(err.Error(), "set LOGWEAVE_TOKEN") {
		t.Errorf("loaded without LOGWEAVE_TOKEN: %v", err)
	}
}

// testToken stands for the LOGWEAVE_TOKEN a user sets in .env.
const testToken = "compose-test-token"

func env(s types.ServiceConfig) map[string]string {
	out := map[string]string{}
	for k, v := range s.Environment {
		if v != nil {
			out[k] = *v
		}
	}
	return out
}

// flag returns the value after name in a service's command.
func flag(s types.ServiceConfig, name string) string {
	if i := slices.Index(s.Command, name); i >= 0 && i+1 < len(s.Command) {
		return s.Command[i+1]
	}
	return ""
}

// published finds the port mapping of a service for a container port.
func published(s types.ServiceConfig, target int, proto string) *types.ServicePortConfig {
	for i, p := range s.Ports {
		if int(p.Target) == target && p.Protocol == proto {
			return &s.Ports[i]
		}
	}
	return nil
}

// mountOf is the volume mounted at (or above) a path in the container.
func mountOf(s types.ServiceConfig, path string) *types.ServiceVolumeConfig {
	var best *types.ServiceVolumeConfig
	for i, v := range s.Volumes {
		if (path == v.Target || strings.HasPrefix(path, v.Target+"/")) && (best == nil || len(v.Target) > len(best.Target)) {
			best = &s.Volumes[i]
		}
	}
	return best
}

func TestComposeStackLoadsAndConverges(t *testing.T) {
	p := load(t)
	for _, name := range []string{"kafka", "elasticsearch", "kibana", "setup", "collector", "shipper", "gateway", "orders", "payments", "payments-shipper"} {
		if _, ok := p.Services[name]; !ok {
			t.Fatalf("service %s missing", name)
		}
	}
	// Converges without races: what others wait for has a health check;
	// the collector starts once the one-shot setup succeeded, and setup
	// once Elasticsearch and Kibana are healthy.
	for name, svc := range p.Services {
		for dep, d := range svc.DependsOn {
			other, ok := p.Services[dep]
			switch {
			case !ok:
				t.Errorf("%s depends on unknown service %s", name, dep)
			case d.Condition == types.ServiceConditionHealthy && (other.HealthCheck == nil || len(other.HealthCheck.Test) == 0):
				t.Errorf("%s waits for %s to be healthy, which has no health check", name, dep)
			case d.Condition == types.ServiceConditionCompletedSuccessfully && other.Restart != "no" && other.Restart != "":
				t.Errorf("%s waits for %s to complete, which restarts (%s)", name, dep, other.Restart)
			}
		}
	}
	want := map[string]map[string]string{
		"collector": {"setup": types.ServiceConditionCompletedSuccessfully, "kafka": types.ServiceConditionHealthy, "elasticsearch": types.ServiceConditionHealthy},
		"setup":     {"elasticsearch": types.ServiceConditionHealthy, "kibana": types.ServiceConditionHealthy},
		"kibana":    {"elasticsearch": types.ServiceConditionHealthy},
		// The node shipper takes GELF once the collector is ready, and the
		// services log through it once its GELF input listens (UDP sent
		// before that is lost).
		"shipper":          {"collector": types.ServiceConditionHealthy},
		"payments-shipper": {"collector": types.ServiceConditionHealthy},
		"orders":           {"shipper": types.ServiceConditionHealthy},
		"gateway":          {"shipper": types.ServiceConditionHealthy},
	}
	for svc, deps := range want {
		for dep, cond := range deps {
			if got := p.Services[svc].DependsOn[dep].Condition; got != cond {
				t.Errorf("%s depends on %s with %q, want %q", svc, dep, got, cond)
			}
		}
	}
	// logweave's health checks: the image's own binary (there is no shell)
	// asking its /readyz, from the configuration the service mounts.
	for name, svc := range p.Services {
		if !strings.HasPrefix(svc.Image, "logweave/") || svc.HealthCheck == nil {
			continue
		}
		test := svc.HealthCheck.Test
		bin := "/" + strings.TrimPrefix(strings.Split(svc.Image, ":")[0], "logweave/")
		if len(test) < 5 || test[0] != "CMD" || test[1] != bin || test[2] != "health" || test[3] != "-config" {
			t.Errorf("%s: health check %v, want CMD %s health -config FILE", name, test, bin)
			continue
		}
		if m := mountOf(svc, test[4]); m == nil || m.Target != test[4] || m.Type != types.VolumeTypeBind {
			t.Errorf("%s: the health check reads %s, which is not a mounted configuration", name, test[4])
		}
	}
	if !slices.Contains(p.Services["setup"].Command, "setup") || flag(p.Services["setup"], "-wait") == "" {
		t.Errorf("setup runs %v, want collector setup -wait", p.Services["setup"].Command)
	}
}

// Images: the stack's own services are built from the multi-stage
// Dockerfile's stages and tagged as `make images` tags them; the others
// are the official images the issue names.
func TestComposeImages(t *testing.T) {
	p := load(t)
	for name, svc := range p.Services {
		if svc.Build == nil {
			continue
		}
		df, err := os.ReadFile(filepath.Join(svc.Build.Context, svc.Build.Dockerfile))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !regexp.MustCompile(`(?m)^FROM \S+ AS ` + regexp.QuoteMeta(svc.Build.Target) + `$`).Match(df) {
			t.Errorf("%s: %s has no stage %q", name, svc.Build.Dockerfile, svc.Build.Target)
		}
		if svc.Image != "logweave/"+svc.Build.Target+":dev" {
			t.Errorf("%s: image %s, want logweave/%s:dev (as make images tags it)", name, svc.Image, svc.Build.Target)
		}
	}
	// The sidecar runs the image the node shipper builds.
	if p.Services["payments-shipper"].Image != p.Services["shipper"].Image {
		t.Errorf("payments-shipper runs %s, shipper builds %s", p.Services["payments-shipper"].Image, p.Services["shipper"].Image)
	}
	for name, prefix := range map[string]string{
		"kafka": "apache/kafka:", "elasticsearch": "docker.elastic.co/elasticsearch/elasticsearch:8.",
		"kibana": "docker.elastic.co/kibana/kibana:8.", "gateway": "nginx:",
	} {
		if !strings.HasPrefix(p.Services[name].Image, prefix) {
			t.Errorf("%s: image %s, want %s…", name, p.Services[name].Image, prefix)
		}
	}
	esVersion := strings.TrimPrefix(p.Services["elasticsearch"].Image, "docker.elastic.co/elasticsearch/elasticsearch:")
	if !strings.HasSuffix(p.Services["kibana"].Image, ":"+esVersion) {
		t.Errorf("kibana %s is not Elasticsearch's version %s", p.Services["kibana"].Image, esVersion)
	}
	// Kafka in KRaft mode, one node that is broker and controller;
	// Elasticsearch single-node, security off, heap set.
	k := env(p.Services["kafka"])
	if roles := k["KAFKA_PROCESS_ROLES"]; !strings.Contains(roles, "broker") || !strings.Contains(roles, "controller") || k["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "" {
		t.Errorf("kafka is not a KRaft broker+controller: %v", k)
	}
	es := env(p.Services["elasticsearch"])
	if es["discovery.type"] != "single-node" || es["xpack.security.enabled"] != "false" || !strings.Contains(es["ES_JAVA_OPTS"], "-Xmx") {
		t.Errorf("elasticsearch: %v", es)
	}
}

// Every mounted logweave configuration loads and validates with the
// environment its service has (and nothing else), and what it says
// agrees with the service's ports, volumes and the services it names.
func TestComposeConfigsAgreeWithServices(t *testing.T) {
	p := load(t)
	hostOf := func(name string, s string) (string, int) {
		h, port, err := deploytest.HostPort(s)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, ok := p.Services[h]; !ok {
			t.Errorf("%s points at %s, which is no service of the stack", name, s)
		}
		return h, port
	}
	checked := 0
	for name, svc := range p.Services {
		for _, v := range svc.Volumes {
			if v.Type == types.VolumeTypeVolume {
				if _, ok := p.Volumes[v.Source]; !ok {
					t.Errorf("%s: volume %s is not declared", name, v.Source)
				}
				continue
			}
			if v.Type != types.VolumeTypeBind {
				continue
			}
			data, err := os.ReadFile(v.Source)
			if err != nil {
				t.Errorf("%s mounts %s: %v", name, v.Source, err)
				continue
			}
			if !v.ReadOnly {
				t.Errorf("%s: configuration %s is mounted writable", name, v.Source)
			}
			if cfg := flag(svc, "-config"); cfg != "" && cfg != v.Target && strings.HasSuffix(v.Target, ".yaml") {
				t.Errorf("%s: -config %s but the file is mounted at %s", name, cfg, v.Target)
			}
			switch filepath.Base(v.Target) {
			case "collector.yaml":
				checked++
				if v.Target != "/etc/logweave/collector.yaml" { // the image's CMD reads it there
					t.Errorf("%s: collector.yaml mounted at %s", name, v.Target)
				}
				c, err := deploytest.Collector(data, env(svc))
				if err != nil {
					t.Errorf("%s: %s: %v", name, v.Source, err)
					continue
				}
				for _, b := range c.Kafka.Brokers {
					if h, port := hostOf(name+" kafka.brokers", b); !strings.Contains(env(p.Services[h])["KAFKA_ADVERTISED_LISTENERS"], "//"+h+":"+strconv.Itoa(port)) {
						t.Errorf("%s: broker %s is not what kafka advertises", name, b)
					}
				}
				for _, u := range c.Elasticsearch.URLs {
					if _, port := hostOf(name+" elasticsearch.urls", u); port != 9200 {
						t.Errorf("%s: elasticsearch %s", name, u)
					}
				}
				if c.Kibana.URL != "" {
					if _, port := hostOf(name+" kibana.url", c.Kibana.URL); port != 5601 {
						t.Errorf("%s: kibana %s", name, c.Kibana.URL)
					}
				}
				if c.HTTP.Token != testToken {
					t.Errorf("%s: http.token is %q, not the stack's LOGWEAVE_TOKEN: anyone reaching the published port could write events", name, c.HTTP.Token)
				}
				if name == "collector" {
					port, _ := deploytest.Port(c.HTTP.Listen)
					if published(svc, port, "tcp") == nil {
						t.Errorf("collector listens on %d, which is not published", port)
					}
					// The inputs agents on the host send to (Forward with
					// its UDP heartbeat, OTLP), which take no token: on the
					// host's loopback only.
					for _, in := range []struct{ name, listen, proto string }{
						{"forward.listen", c.Forward.Listen, "tcp"}, {"forward.listen (heartbeat)", c.Forward.Listen, "udp"},
						{"otlp.grpc_listen", c.OTLP.GRPCListen, "tcp"}, {"otlp.http_listen", c.OTLP.HTTPListen, "tcp"},
					} {
						port, err := deploytest.Port(in.listen)
						if pp := published(svc, port, in.proto); err != nil || pp == nil || pp.HostIP != "127.0.0.1" {
							t.Errorf("collector: %s %q is not published (%s) on 127.0.0.1: %+v", in.name, in.listen, in.proto, pp)
						}
					}
					if m := mountOf(svc, c.Buffer.Path); m == nil || m.Type != types.VolumeTypeVolume {
						t.Errorf("collector: buffer.path %s is not on a volume", c.Buffer.Path)
					}
				}
			case "shipper.yaml":
				checked++
				s, err := deploytest.Shipper(data, env(svc))
				if err != nil {
					t.Errorf("%s: %s: %v", name, v.Source, err)
					continue
				}
				if s.Collector.Token != mustCollector(t, p).HTTP.Token {
					t.Errorf("%s: collector.token %q is not the collector's http.token", name, s.Collector.Token)
				}
				collectorPort, _ := deploytest.Port(mustCollector(t, p).HTTP.Listen)
				for _, u := range s.Collector.URLs {
					if h, port := hostOf(name+" collector.urls", u); h != "collector" || port != collectorPort {
						t.Errorf("%s: collector.urls %s, the collector listens on collector:%d", name, u, collectorPort)
					}
				}
				if m := mountOf(svc, s.State.Path); m == nil || m.Type != types.VolumeTypeVolume || m.ReadOnly {
					t.Errorf("%s: state.path %s is not on a writable volume", name, s.State.Path)
				}
				for _, in := range s.Inputs {
					switch in.Type {
					case "gelf":
						port, _ := deploytest.Port(in.GELF.Listen)
						for _, proto := range []string{"udp", "tcp"} {
							if pp := published(svc, port, proto); pp == nil || pp.HostIP != "127.0.0.1" {
								t.Errorf("%s: gelf %s/%d is not published on 127.0.0.1 (where the daemon sends from): %+v", name, proto, port, pp)
							}
						}
						// The services logging through the gelf driver send
						// there (the daemon sends from the host).
						for other, o := range p.Services {
							if o.Logging == nil || o.Logging.Driver != "gelf" {
								continue
							}
							addr := o.Logging.Options["gelf-address"]
							proto, hostPort, _ := strings.Cut(addr, "://")
							if pp := published(svc, port, proto); pp == nil || hostPort != pp.HostIP+":"+pp.Published {
								t.Errorf("%s logs to %s, which is not where the shipper's gelf input is published", other, addr)
							}
						}
					case "file":
						// Each glob is read from a volume another service
						// writes: payments' -log-file.
						for _, glob := range in.Paths {
							m := mountOf(svc, filepath.Dir(glob))
							if m == nil {
								t.Errorf("%s: %s is on no volume", name, glob)
								continue
							}
							found := false
							for _, o := range p.Services {
								lf := flag(o, "-log-file")
								if om := mountOf(o, lf); lf != "" && om != nil && om.Source == m.Source && !om.ReadOnly {
									if ok, _ := filepath.Match(glob, lf); ok {
										found = true
									}
								}
							}
							if !found {
								t.Errorf("%s: no service writes a file %s matches in volume %s", name, glob, m.Source)
							}
						}
					}
				}
			}
		}
	}
	if checked != 4 { // collector.yaml (setup, collector), shipper.yaml, shipper-sidecar.yaml
		t.Fatalf("checked %d mounted configs, want 4", checked)
	}
	// The services the gateway and orders call exist and listen there.
	orders := p.Services["orders"]
	if _, port := hostOf("orders -next", flag(orders, "-next")); strconv.Itoa(port) != strings.TrimPrefix(flag(p.Services["payments"], "-listen"), ":") {
		t.Errorf("orders calls %s, payments listens on %s", flag(orders, "-next"), flag(p.Services["payments"], "-listen"))
	}
	conf, _ := os.ReadFile("nginx.conf")
	m := regexp.MustCompile(`proxy_pass (http://[^;]+);`).FindSubmatch(conf)
	if m == nil {
		t.Fatal("nginx.conf has no proxy_pass")
	}
	if h, port := hostOf("gateway proxy_pass", string(m[1])); h != "orders" || ":"+strconv.Itoa(port) != flag(orders, "-listen") {
		t.Errorf("the gateway passes to %s, orders listens on %s", m[1], flag(orders, "-listen"))
	}
	if !regexp.MustCompile(`listen 80;`).Match(conf) || published(p.Services["gateway"], 80, "tcp") == nil {
		t.Error("the gateway's port 80 is not published")
	}
}

func mustCollector(t *testing.T, p *types.Project) *collector.Config {
	t.Helper()
	svc := p.Services["collector"]
	for _, v := range svc.Volumes {
		if filepath.Base(v.Target) == "collector.yaml" {
			data, err := os.ReadFile(v.Source)
			if err != nil {
				t.Fatal(err)
			}
			c, err := deploytest.Collector(data, env(svc))
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
	}
	t.Fatal("the collector mounts no collector.yaml")
	return nil
}

// The gateway's nginx configuration passes `nginx -t` (Debian's nginx,
// installed by .ci/run), with the upstream's compose host name replaced by
// an address this machine resolves and the log written to a file.
func TestComposeGatewayNginxConfig(t *testing.T) {
	conf, err := os.ReadFile("nginx.conf")
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
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		t.Skip("nginx is not installed (.ci/run installs it)")
	}
	path := filepath.Join(dir, "nginx.conf")
	os.WriteFile(path, []byte(s), 0o644)
	if out, err := exec.Command(nginx, "-t", "-c", path, "-e", filepath.Join(dir, "error.log"), "-g", "pid "+filepath.Join(dir, "nginx.pid")+";").CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
}
