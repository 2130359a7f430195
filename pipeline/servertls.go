package pipeline

import (
	"crypto/tls"
	"fmt"

	"github.com/logweave/logweave/internal/fsutil"
)

// ServerTLS makes a listener serve TLS; with client_ca, clients must
// present a certificate signed by it (mTLS). Empty cert: plain TCP.
type ServerTLS struct {
	Cert     string `yaml:"cert"`
	Key      string `yaml:"key"`
	ClientCA string `yaml:"client_ca"`
}

// Validate checks that cert and key come together, and client_ca only
// with them (prefix names the section in errors).
func (t ServerTLS) Validate(prefix string) error {
	if (t.Cert == "") != (t.Key == "") {
		return fmt.Errorf("%s: cert and key go together", prefix)
	}
	if t.ClientCA != "" && t.Cert == "" {
		return fmt.Errorf("%s.client_ca: needs cert and key", prefix)
	}
	return nil
}

// Config loads the files: nil when TLS is off.
func (t ServerTLS) Config(prefix string) (*tls.Config, error) {
	if t.Cert == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(t.Cert, t.Key)
	if err != nil {
		return nil, fmt.Errorf("%s.cert: %w", prefix, err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if t.ClientCA != "" {
		pool, err := fsutil.CertPool(t.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("%s.client_ca: %w", prefix, err)
		}
		tc.ClientCAs, tc.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return tc, nil
}
