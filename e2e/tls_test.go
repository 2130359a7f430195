package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/logweave/logweave/collector"
	"github.com/logweave/logweave/internal/estest"
	"github.com/logweave/logweave/shipper"
)

type pki struct{ ca, serverCert, serverKey, clientCert, clientKey string }

// newPKI writes a CA and a server (127.0.0.1) and a client certificate
// signed by it.
func newPKI(t *testing.T) pki {
	dir := t.TempDir()
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
		return p
	}
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "logweave test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTpl, caTpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leaf := func(serial int64, cn string, usage x509.ExtKeyUsage) ([]byte, []byte) {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
		der, err := x509.CreateCertificate(rand.Reader, tpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kb, _ := x509.MarshalECPrivateKey(k)
		return der, kb
	}
	sc, sk := leaf(2, "collector", x509.ExtKeyUsageServerAuth)
	cc, ck := leaf(3, "shipper", x509.ExtKeyUsageClientAuth)
	return pki{
		ca:         write("ca.pem", "CERTIFICATE", caDER),
		serverCert: write("server.pem", "CERTIFICATE", sc), serverKey: write("server-key.pem", "EC PRIVATE KEY", sk),
		clientCert: write("client.pem", "CERTIFICATE", cc), clientKey: write("client-key.pem", "EC PRIVATE KEY", ck),
	}
}

// Shipper to collector over mTLS with a bearer token: delivered with the
// right credentials; with a wrong token or no client certificate nothing
// is acknowledged (and the lines stay to be sent).
func TestShipperToCollectorMTLSAndToken(t *testing.T) {
	p := newPKI(t)
	dir := t.TempDir()
	es := estest.New()
	defer es.Close()
	cfg := collector.DefaultConfig()
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.HTTP.Token = "s3cret-token"
	cfg.HTTP.TLS = collector.ServerTLS{Cert: p.serverCert, Key: p.serverKey, ClientCA: p.ca}
	cfg.Buffer.Path = filepath.Join(dir, "buffer")
	cfg.Elasticsearch.URLs = []string{es.URL}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	col, err := collector.New(cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	col.Start()
	defer stopCollector(t, col)
	writeCorpus(t, dir, 200, nil)

	ship := func(mutate func(*shipper.Config)) *runningShipper {
		sc := shipper.DefaultConfig()
		sc.Collector.URLs = []string{"https://" + col.Addr()}
		sc.Collector.Linger = 20 * time.Millisecond
		sc.Collector.Token = "s3cret-token"
		sc.Collector.TLS.CACert, sc.Collector.TLS.Cert, sc.Collector.TLS.Key = p.ca, p.clientCert, p.clientKey
		sc.State.Path = filepath.Join(t.TempDir(), "state")
		in := shipper.InputConfig{Type: "file", Config: defaultTail()}
		in.Paths = []string{filepath.Join(dir, "logs", "*.log")}
		in.ScanInterval, in.PollInterval = 50*time.Millisecond, 20*time.Millisecond
		sc.Inputs = []shipper.InputConfig{in}
		mutate(sc)
		if err := sc.Validate(); err != nil {
			t.Fatal(err)
		}
		return runShipperConfig(t, sc)
	}
	for name, mutate := range map[string]func(*shipper.Config){
		"wrong token":           func(c *shipper.Config) { c.Collector.Token = "guess" },
		"no client certificate": func(c *shipper.Config) { c.Collector.TLS.Cert, c.Collector.TLS.Key = "", "" },
		"unknown server CA":     func(c *shipper.Config) { c.Collector.TLS.CACert = "" },
	} {
		rs := ship(mutate)
		time.Sleep(700 * time.Millisecond)
		if rs.Acked() != 0 || es.Count("logs-*") != 0 {
			t.Fatalf("%s: %d acknowledged, %d indexed", name, rs.Acked(), es.Count("logs-*"))
		}
		rs.stop(t)
	}
	rs := ship(func(*shipper.Config) {})
	defer rs.stop(t)
	eventually(t, 20*time.Second, "lines delivered over mTLS", func() bool { return es.Count("logs-*") >= 200 })
}
