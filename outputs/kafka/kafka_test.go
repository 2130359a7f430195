package kafka_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/logweave/logweave/outputs/kafka"
	"github.com/logweave/logweave/pipeline"
)

// selfSigned writes a CA-less self-signed certificate for 127.0.0.1 and
// returns the server config and the PEM path clients trust.
func selfSigned(t *testing.T) (*tls.Config, string) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kfake"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	kb, _ := x509.MarshalECPrivateKey(key)
	cert, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(path, certPEM, 0o644)
	return &tls.Config{Certificates: []tls.Certificate{cert}}, path
}

func roundTrip(t *testing.T, cfg kafka.Config, n int) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p, err := kafka.NewProducer(cfg)
	if err != nil {
		return err
	}
	defer p.Close()
	recs := make([]pipeline.Record, n)
	for i := range recs {
		recs[i] = pipeline.Record{ID: fmt.Sprint(i), Index: "logs-x", Key: fmt.Sprintf("req-%d", i%7), Doc: []byte(fmt.Sprintf(`{"n":%d}`, i))}
	}
	if err := p.Write(ctx, recs); err != nil {
		return err
	}
	c, err := kafka.NewConsumer(cfg, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	seen := map[string]bool{}
	for len(seen) < n {
		got, commit, err := c.Next(ctx, n, 1<<20)
		if err != nil {
			return err
		}
		for _, r := range got {
			if r.Index != "logs-x" || string(r.Doc) != fmt.Sprintf(`{"n":%s}`, r.ID) {
				t.Fatalf("record came back changed: %+v", r)
			}
			seen[r.ID] = true
		}
		if err := commit(ctx); err != nil {
			return err
		}
	}
	return nil
}

func TestSASLAndTLS(t *testing.T) {
	serverTLS, caPath := selfSigned(t)
	for _, c := range []struct {
		name, mech, kfakeMech string
		tls                   bool
	}{
		{"plaintext", "", "", false},
		{"sasl-plain", "plain", "PLAIN", false},
		{"sasl-scram-sha-256", "scram-sha-256", "SCRAM-SHA-256", false},
		{"sasl-scram-sha-512-over-tls", "scram-sha-512", "SCRAM-SHA-512", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			opts := []kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(3, "events")}
			if c.kfakeMech != "" {
				opts = append(opts, kfake.EnableSASL(), kfake.Superuser(c.kfakeMech, "logweave", "s3cret"))
			}
			if c.tls {
				opts = append(opts, kfake.TLS(serverTLS))
			}
			cluster, err := kfake.NewCluster(opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer cluster.Close()
			cfg := kafka.DefaultConfig()
			cfg.Brokers, cfg.Topic, cfg.Group, cfg.Partitions = cluster.ListenAddrs(), "events", "g-"+c.name, 3
			cfg.SASL = kafka.SASLConfig{Mechanism: c.mech, Username: "logweave", Password: "s3cret"}
			cfg.TLS = kafka.TLSConfig{Enabled: c.tls, CACert: caPath}
			if err := cfg.Validate("kafka"); err != nil {
				t.Fatal(err)
			}
			if err := roundTrip(t, cfg, 50); err != nil {
				t.Fatal(err)
			}
			if c.mech != "" {
				bad := cfg
				bad.SASL.Password = "wrong"
				bad.Group += "-bad"
				if err := roundTrip(t, bad, 1); err == nil {
					t.Fatal("a wrong password was accepted")
				}
			}
		})
	}
}

func TestEnsureTopicCreatesMissingTopic(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	cfg := kafka.DefaultConfig()
	cfg.Brokers, cfg.Topic, cfg.Partitions = cluster.ListenAddrs(), "fresh-topic", 4
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := 0; i < 2; i++ { // the second call finds it
		if err := kafka.EnsureTopic(ctx, cfg); err != nil {
			t.Fatal(err)
		}
	}
	if err := roundTrip(t, cfg, 20); err != nil {
		t.Fatal(err)
	}
}

func TestConfigValidation(t *testing.T) {
	cases := map[string]func(*kafka.Config){
		"brokers[0]":  func(c *kafka.Config) { c.Brokers = []string{"nohost"} },
		"compression": func(c *kafka.Config) { c.Compression = "brotli" },
		"mechanism":   func(c *kafka.Config) { c.SASL.Mechanism = "kerberos" },
		"username":    func(c *kafka.Config) { c.SASL.Mechanism = "plain" },
		"cert and key": func(c *kafka.Config) {
			c.TLS.Cert = "x.pem"
		},
		"partitions": func(c *kafka.Config) { c.Partitions = 0 },
	}
	for want, mutate := range cases {
		cfg := kafka.DefaultConfig()
		cfg.Brokers = []string{"127.0.0.1:9092"}
		mutate(&cfg)
		if err := cfg.Validate("kafka"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v", want, err)
		}
	}
}
