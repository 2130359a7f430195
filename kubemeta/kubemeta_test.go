package kubemeta

import (
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/logweave/logweave/internal/kubetest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newAPIServer(t *testing.T, pods map[string]string) (*kubetest.APIServer, Config) {
	s := kubetest.New(t, pods)
	cfg := DefaultConfig()
	cfg.Annotations, cfg.URL, cfg.CAFile, cfg.TokenFile = true, s.URL, s.CAFile, s.TokenFile
	return s, cfg
}

const podJSON = `{"kind":"Pod","metadata":{"name":"pay-7d9","namespace":"shop","uid":"u-1",
 "annotations":{"logweave.io/multiline":"java","logweave.io/multiline-sidecar":"off","kubectl.kubernetes.io/last-applied-configuration":"{}"}}}`

func TestMultilinePresetFromAnnotations(t *testing.T) {
	s, cfg := newAPIServer(t, map[string]string{"shop/pay-7d9": podJSON,
		"shop/plain": `{"metadata":{"name":"plain","uid":"u-2"}}`})
	c, err := New(cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ ns, pod, uid, container, want string }{
		{"shop", "pay-7d9", "u-1", "app", "java"},    // the pod's
		{"shop", "pay-7d9", "u-1", "sidecar", "off"}, // the container's wins
		{"shop", "pay-7d9", "", "app", "java"},       // /var/log/containers paths carry no uid
		{"shop", "pay-7d9", "u-0", "app", ""},        // an earlier pod of that name
		{"shop", "plain", "u-2", "app", ""},          // no annotation
		{"shop", "gone", "u-3", "app", ""},           // deleted
		{"", "", "", "", ""},                         // not a pod's file
	} {
		if got := c.MultilinePreset(tc.ns, tc.pod, tc.uid, tc.container); got != tc.want {
			t.Errorf("%s/%s (uid %q) container %s: %q, want %q", tc.ns, tc.pod, tc.uid, tc.container, got, tc.want)
		}
	}
	// pay-7d9 was asked for once, plain once, gone once (and again for
	// u-0, which the cache does not answer): the rest came from the cache.
	if n := s.Gets.Load(); n != 4 {
		t.Fatalf("%d requests, want 4", n)
	}
}

// The token is read again for each request: a rotated token is used as
// soon as it is written; a refused one (401) is an error, and lookups
// pause for retry_after.
func TestTokenRotationAndFailurePause(t *testing.T) {
	s, cfg := newAPIServer(t, map[string]string{"shop/a": podJSON, "shop/b": podJSON, "shop/c": podJSON})
	cfg.RetryAfter = 300 * time.Millisecond
	c, err := New(cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.MultilinePreset("shop", "a", "", "app"); got != "java" {
		t.Fatalf("a: %q", got)
	}
	s.RotateToken("t2") // the API server rotated it; the file not yet
	if got := c.MultilinePreset("shop", "b", "", "app"); got != "" {
		t.Fatalf("b with a stale token: %q, want the input's setting", got)
	}
	os.WriteFile(cfg.TokenFile, []byte("t2"), 0o600)
	before := s.Gets.Load()
	if got := c.MultilinePreset("shop", "c", "", "app"); got != "" || s.Gets.Load() != before {
		t.Fatalf("c within retry_after: %q after %d requests, want none", got, s.Gets.Load()-before)
	}
	time.Sleep(cfg.RetryAfter)
	if got := c.MultilinePreset("shop", "c", "", "app"); got != "java" {
		t.Fatalf("c after retry_after with the new token: %q", got)
	}
}

// An API server that never answers costs one timeout, then lookups pause.
func TestStalledAPIServerTimesOut(t *testing.T) {
	s, cfg := newAPIServer(t, map[string]string{"shop/a": podJSON})
	defer s.Stall()()
	cfg.Timeout = 200 * time.Millisecond
	c, err := New(cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for range 5 {
		if got := c.MultilinePreset("shop", "a", "", "app"); got != "" {
			t.Fatalf("%q from a stalled server", got)
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("5 lookups took %v: want one timeout, then no requests for retry_after", d)
	}
	if n := s.Gets.Load(); n != 1 {
		t.Fatalf("%d requests, want 1", n)
	}
}

func TestValidateAndNew(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	c := DefaultConfig()
	if err := c.Validate("kubernetes"); err != nil {
		t.Fatalf("off: %v", err)
	}
	c.Annotations = true
	if err := c.Validate("kubernetes"); err != nil {
		t.Fatalf("on, url from the environment: %v", err)
	}
	c.CAFile = ""
	if _, err := New(c, quiet); err == nil || !strings.Contains(err.Error(), "kubernetes.url") {
		t.Fatalf("on, outside a pod, no url: %v", err)
	}
	c.URL = "ftp://x"
	if err := c.Validate("kubernetes"); err == nil {
		t.Fatal("ftp url accepted")
	}
	c.Timeout = 0
	c.URL = "https://10.0.0.1"
	if err := c.Validate("kubernetes"); err == nil {
		t.Fatal("timeout 0 accepted")
	}
	t.Setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
	c = DefaultConfig()
	c.Annotations, c.CAFile = true, "/nonexistent/ca.crt"
	if _, err := New(c, quiet); err == nil || !strings.Contains(err.Error(), "ca_file") {
		t.Fatalf("missing CA: %v", err)
	}
}
