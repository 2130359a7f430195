// Package kubetest stands in for the Kubernetes API server in tests: it
// serves pods (GET /api/v1/namespaces/NS/pods/NAME) over TLS to one bearer
// token, with the CA and token files a service account would have.
package kubetest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// APIServer is a running stand-in.
type APIServer struct {
	*httptest.Server
	CAFile    string // the server's certificate, PEM
	TokenFile string // holds the token the server accepts, "t1"
	Gets      atomic.Int64
	token     atomic.Value // string
	stall     chan struct{}
}

// New serves pods, by "namespace/name", as their JSON, on loopback.
// Closed at the test's end.
func New(t testing.TB, pods map[string]string) *APIServer { return NewOn(t, "127.0.0.1", pods) }

// NewOn serves on an address of host (an IP, e.g. a Docker network's
// gateway, so containers reach it), with a certificate for that IP.
func NewOn(t testing.TB, host string, pods map[string]string) *APIServer {
	s := &APIServer{}
	s.token.Store("t1")
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.Gets.Add(1)
		if s.stall != nil {
			select {
			case <-s.stall:
			case <-r.Context().Done():
				return
			}
		}
		if r.Header.Get("Authorization") != "Bearer "+s.token.Load().(string) {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"kind":"Status","message":"Unauthorized"}`)
			return
		}
		var ns, name string
		if rest, ok := strings.CutPrefix(r.URL.Path, "/api/v1/namespaces/"); ok {
			ns, name, _ = strings.Cut(rest, "/pods/")
		}
		body, ok := pods[ns+"/"+name]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"kind":"Status","message":"pods \"`+name+`\" not found"}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, body)
	}))
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	s.Listener.Close()
	s.Listener = ln
	cert, certPEM := selfSigned(t, host)
	s.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	s.StartTLS()
	t.Cleanup(s.Close)
	dir := t.TempDir()
	s.CAFile = filepath.Join(dir, "ca.crt")
	s.TokenFile = filepath.Join(dir, "token")
	if err := os.WriteFile(s.CAFile, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.TokenFile, []byte("t1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "namespace"), []byte("logweave"), 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

// Dir holds ca.crt, token and namespace, as a pod's
// /var/run/secrets/kubernetes.io/serviceaccount does.
func (s *APIServer) Dir() string { return filepath.Dir(s.TokenFile) }

// Host and Port are what KUBERNETES_SERVICE_HOST and _PORT would say.
func (s *APIServer) Host() string { h, _, _ := net.SplitHostPort(s.Listener.Addr().String()); return h }

// Port: see Host.
func (s *APIServer) Port() string { _, p, _ := net.SplitHostPort(s.Listener.Addr().String()); return p }

// selfSigned is a certificate for host (an IP), its own CA.
func selfSigned(t testing.TB, host string) (tls.Certificate, []byte) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kubernetes"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    []string{"kubernetes.default.svc"},
	}
	if ip := net.ParseIP(host); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// RotateToken makes the server accept only tok from now on (the token
// file is left as it was).
func (s *APIServer) RotateToken(tok string) { s.token.Store(tok) }

// Stall makes requests wait until the returned func is called (or they
// are cancelled). Call before the first request.
func (s *APIServer) Stall() (release func()) {
	s.stall = make(chan struct{})
	return func() { close(s.stall) }
}
