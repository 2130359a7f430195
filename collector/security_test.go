package collector_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/logweave/logweave/collector"
)

// With http.metrics_auth, /metrics needs the same bearer token as ingest.
func TestMetricsAuthRequiresTheToken(t *testing.T) {
	cfg := testConfig(t)
	cfg.HTTP.Token = "t0ken"
	cfg.HTTP.MetricsAuth = true
	_, base := start(t, cfg)
	for token, want := range map[string]int{"": 401, "wrong": 401, "t0ken": 200} {
		req, _ := http.NewRequest("GET", base+"/metrics", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("/metrics with token %q: %d, want %d", token, resp.StatusCode, want)
		}
	}
	// Probes stay open: an orchestrator has no token.
	if resp, err := http.Get(base + "/readyz"); err != nil || resp.StatusCode != 200 {
		t.Errorf("/readyz: %v %v", resp, err)
	}
	cfg = collector.DefaultConfig()
	cfg.HTTP.MetricsAuth = true
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "http.metrics_auth") {
		t.Errorf("metrics_auth without a token: %v", err)
	}
}

// A collector that anyone on the network may write to says so at start.
func TestOpenListenerWarns(t *testing.T) {
	for _, c := range []struct {
		listen, token string
		warn          bool
	}{
		{"0.0.0.0:0", "", true},
		{":0", "", true},
		{"0.0.0.0:0", "secret", false},
		{"127.0.0.1:0", "", false},
		{"localhost:0", "", false},
	} {
		cfg := testConfig(t)
		cfg.HTTP.Listen, cfg.HTTP.Token = c.listen, c.token
		var logs bytes.Buffer
		col, err := collector.New(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		col.Shutdown(ctx)
		cancel()
		if got := strings.Contains(logs.String(), "level=WARN") && strings.Contains(logs.String(), "anyone who can connect can write events"); got != c.warn {
			t.Errorf("listen %s token %q: warned %v, want %v:\n%s", c.listen, c.token, got, c.warn, logs.String())
		}
	}
}
