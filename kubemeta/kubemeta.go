// Package kubemeta reads pods' annotations from the Kubernetes API server,
// for the shipper's file inputs: a pod annotated
//
//	logweave.io/multiline: java                # every container of the pod
//	logweave.io/multiline-worker: python       # container "worker" only (wins)
//
// has its log files joined with that multiline preset (java, python, go,
// indented, auto, or off) instead of the input's own setting. The files'
// paths name the pod (/var/log/pods/NS_POD_UID/CONTAINER/N.log,
// /var/log/containers/POD_NS_CONTAINER-ID.log); one GET per pod
// (`/api/v1/namespaces/NS/pods/POD`), cached, with the service account's
// token read again for every request (projected tokens rotate).
//
// A lookup that fails (API server down or slow, 403) leaves the file with
// the input's setting; it is logged and counted
// (logweave_kubernetes_lookups_total{result}), and for RetryAfter no other
// lookup is tried, so an unreachable API server costs the tail loop at
// most one Timeout per RetryAfter.
package kubemeta

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/tidwall/gjson"
)

// In-cluster defaults: where every pod finds its service account.
const (
	DefaultTokenFile = "/var/run/secrets/kubernetes.io/serviceaccount/token"
	DefaultCAFile    = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
)

// Annotation is the prefix of the annotations the shipper reads.
const Annotation = "logweave.io/multiline"

// Config is the shipper's kubernetes: section.
type Config struct {
	// Annotations turns the lookups on (default false: no API access is
	// needed unless asked for).
	Annotations bool `yaml:"annotations"`
	// URL of the API server; default https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT.
	URL string `yaml:"url"`
	// TokenFile holds the bearer token, read for every request; default
	// the service account's. Empty file: no Authorization header.
	TokenFile string `yaml:"token_file"`
	// CAFile verifies the API server; default the service account's.
	CAFile string `yaml:"ca_file"`
	// Timeout of one request (default 2s).
	Timeout time.Duration `yaml:"timeout"`
	// CacheTTL: how long a pod's annotations are kept (default 10m).
	CacheTTL time.Duration `yaml:"cache_ttl"`
	// RetryAfter: after a failed lookup, lookups wait this long (default 30s).
	RetryAfter time.Duration `yaml:"retry_after"`
}

// DefaultConfig returns the defaults (off).
func DefaultConfig() Config {
	return Config{TokenFile: DefaultTokenFile, CAFile: DefaultCAFile, Timeout: 2 * time.Second,
		CacheTTL: 10 * time.Minute, RetryAfter: 30 * time.Second}
}

// Validate checks the section, naming the key that is wrong.
func (c *Config) Validate(prefix string) error {
	if !c.Annotations {
		return nil
	}
	if c.URL != "" {
		u, err := url.Parse(c.URL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("%s.url: %q is not an http(s) URL", prefix, c.URL)
		}
	}
	if c.Timeout <= 0 || c.CacheTTL <= 0 || c.RetryAfter <= 0 {
		return fmt.Errorf("%s: timeout, cache_ttl and retry_after must be positive", prefix)
	}
	return nil
}

var lookups = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "logweave_kubernetes_lookups_total",
	Help: "Pod lookups at the Kubernetes API server, by result (ok, not_found, error, skipped: not tried while the API server is failing).",
}, []string{"result"})

// Client looks up pods' annotations, with a cache.
type Client struct {
	cfg  Config
	base string
	http *http.Client
	log  *slog.Logger

	mu      sync.Mutex
	cache   map[string]entry // "ns/pod"
	downTil time.Time        // no lookups before this, after a failure
}

type entry struct {
	uid string
	ann map[string]string // only logweave.io/ ones
	at  time.Time
}

const maxCached = 8192

// New returns a client; the CA file must load, and without a URL the
// environment a pod has must name the API server.
func New(cfg Config, log *slog.Logger) (*Client, error) {
	if log == nil {
		log = slog.Default()
	}
	base := strings.TrimRight(cfg.URL, "/")
	if base == "" {
		host, port := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
		if host == "" {
			return nil, fmt.Errorf("kubernetes.url: not set, and KUBERNETES_SERVICE_HOST is not either (not in a pod?)")
		}
		if port == "" {
			port = "443"
		}
		base = "https://" + net.JoinHostPort(host, port)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	if strings.HasPrefix(base, "https:") && cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("kubernetes.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kubernetes.ca_file: %s holds no PEM certificate", cfg.CAFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &Client{cfg: cfg, base: base, log: log, cache: map[string]entry{},
		http: &http.Client{Transport: tr, Timeout: cfg.Timeout}}, nil
}

// errNotFound: the pod is gone (or another pod has its name now).
var errNotFound = errors.New("pod not found")

// annotations returns the logweave.io/ annotations of a pod; uid, when
// known, must match.
func (c *Client) annotations(ns, pod, uid string) (map[string]string, error) {
	key := ns + "/" + pod
	now := time.Now()
	c.mu.Lock()
	if e, ok := c.cache[key]; ok && now.Sub(e.at) < c.cfg.CacheTTL && (uid == "" || e.uid == uid) {
		c.mu.Unlock()
		return e.ann, nil
	}
	if now.Before(c.downTil) {
		c.mu.Unlock()
		lookups.WithLabelValues("skipped").Inc()
		return nil, errors.New("the API server failed a lookup recently")
	}
	c.mu.Unlock()

	e, err := c.get(ns, pod)
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case errors.Is(err, errNotFound):
		lookups.WithLabelValues("not_found").Inc()
		return nil, err
	case err != nil:
		lookups.WithLabelValues("error").Inc()
		if !now.Before(c.downTil) {
			c.log.Warn("kubernetes: pod lookup failed; files use their input's multiline setting, lookups resume later",
				"pod", key, "error", err, "retry_after", c.cfg.RetryAfter)
		}
		c.downTil = time.Now().Add(c.cfg.RetryAfter)
		return nil, err
	}
	lookups.WithLabelValues("ok").Inc()
	if uid != "" && e.uid != uid {
		return nil, errNotFound // the file is an earlier pod's of the same name
	}
	if len(c.cache) >= maxCached {
		for k, old := range c.cache {
			if now.Sub(old.at) >= c.cfg.CacheTTL {
				delete(c.cache, k)
			}
		}
		if len(c.cache) >= maxCached {
			clear(c.cache)
		}
	}
	c.cache[key] = e
	return e.ann, nil
}

func (c *Client) get(ns, pod string) (entry, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.Timeout)
	defer cancel()
	u := c.base + "/api/v1/namespaces/" + url.PathEscape(ns) + "/pods/" + url.PathEscape(pod)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return entry{}, err
	}
	req.Header.Set("Accept", "application/json")
	if c.cfg.TokenFile != "" {
		tok, err := os.ReadFile(c.cfg.TokenFile)
		if err != nil {
			return entry{}, fmt.Errorf("token_file: %w", err)
		}
		if t := strings.TrimSpace(string(tok)); t != "" {
			req.Header.Set("Authorization", "Bearer "+t)
		}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return entry{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return entry{}, err
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return entry{}, errNotFound
	case resp.StatusCode != http.StatusOK:
		msg := gjson.GetBytes(body, "message").String()
		return entry{}, fmt.Errorf("GET %s: %s %s", u, resp.Status, msg)
	}
	e := entry{uid: gjson.GetBytes(body, "metadata.uid").String(), at: time.Now()}
	gjson.GetBytes(body, "metadata.annotations").ForEach(func(k, v gjson.Result) bool {
		if strings.HasPrefix(k.String(), Annotation) {
			if e.ann == nil {
				e.ann = map[string]string{}
			}
			e.ann[k.String()] = v.String()
		}
		return true
	})
	return e, nil
}

// MultilinePreset is the preset a pod's annotations name for one of its
// containers: "" when the pod has no such annotation, or the lookup
// failed. It blocks for at most Timeout (a lookup not in the cache). uid,
// when known, must be the pod's (a file of an earlier pod of the same name
// gets "").
func (c *Client) MultilinePreset(ns, pod, uid, container string) string {
	if ns == "" || pod == "" {
		return ""
	}
	ann, err := c.annotations(ns, pod, uid)
	if err != nil {
		return ""
	}
	if v, ok := ann[Annotation+"-"+container]; ok && container != "" {
		return strings.TrimSpace(v)
	}
	return strings.TrimSpace(ann[Annotation])
}
