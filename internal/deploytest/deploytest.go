// Package deploytest loads the logweave configurations that the files in
// deploy/ mount, as the binaries would with the environment a deployment
// gives them, for the tests beside those files.
package deploytest

import (
	"fmt"
	"net"
	"net/url"
	"strconv"

	"github.com/logweave/logweave/collector"
	"github.com/logweave/logweave/pipeline"
	"github.com/logweave/logweave/shipper"
)

// Collector loads and validates a collector.yaml with env only.
func Collector(data []byte, env map[string]string) (*collector.Config, error) {
	c := collector.DefaultConfig()
	return c, pipeline.ParseConfigEnv(data, c, lookup(env))
}

// Shipper loads and validates a shipper.yaml with env only.
func Shipper(data []byte, env map[string]string) (*shipper.Config, error) {
	c := shipper.DefaultConfig()
	return c, pipeline.ParseConfigEnv(data, c, lookup(env))
}

func lookup(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

// Port is the port of a listen address ("0.0.0.0:8080", ":8080").
func Port(listen string) (int, error) {
	_, p, err := net.SplitHostPort(listen)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(p)
}

// HostPort is the host and port a URL or host:port names (a URL without a
// port gets its scheme's).
func HostPort(s string) (string, int, error) {
	u, err := url.Parse(s)
	if err == nil && u.Host != "" {
		p := u.Port()
		switch {
		case p != "":
		case u.Scheme == "https":
			p = "443"
		default:
			p = "80"
		}
		n, err := strconv.Atoi(p)
		return u.Hostname(), n, err
	}
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, fmt.Errorf("%q is neither a URL nor host:port", s)
	}
	n, err := strconv.Atoi(p)
	return h, n, err
}
