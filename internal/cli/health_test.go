package cli

import (
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

func TestHealthAsksReadyzOnTheListenPort(t *testing.T) {
	var status atomic.Int32
	status.Store(200)
	var path atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path.Store(r.URL.Path)
		w.WriteHeader(int(status.Load()))
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())

	// A wildcard listen address means this machine.
	for _, listen := range []string{"0.0.0.0:" + port, ":" + port, "127.0.0.1:" + port} {
		if code := Health("test", listen, false); code != 0 {
			t.Errorf("%s: exit %d, want 0", listen, code)
		}
	}
	if path.Load() != "/readyz" {
		t.Errorf("asked %v, want /readyz", path.Load())
	}
	status.Store(503)
	if code := Health("test", ":"+port, false); code != 1 {
		t.Errorf("not ready: exit %d, want 1", code)
	}
	srv.Close()
	if code := Health("test", ":"+port, false); code != 1 {
		t.Errorf("nothing listening: exit %d, want 1", code)
	}
	if code := Health("test", "no port", false); code != 2 {
		t.Errorf("bad listen: exit %d, want 2", code)
	}
}
