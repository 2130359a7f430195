package kafka

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"time"

	kgo "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/logweave/logweave/pipeline"
)

// Config is the collector's `kafka:` section. With no brokers, the collector
// uses its embedded disk buffer instead.
type Config struct {
	Brokers           []string          `yaml:"brokers"`
	Topic             string            `yaml:"topic"`
	Group             string            `yaml:"group"`
	CreateTopic       bool              `yaml:"create_topic"`
	Partitions        int               `yaml:"partitions"`
	ReplicationFactor int               `yaml:"replication_factor"`
	Compression       string            `yaml:"compression"`
	BatchSize         int               `yaml:"batch_size"`
	BatchBytes        pipeline.ByteSize `yaml:"batch_bytes"`
	Linger            time.Duration     `yaml:"linger"`
	FetchMaxBytes     pipeline.ByteSize `yaml:"fetch_max_bytes"`
	TLS               TLSConfig         `yaml:"tls"`
	SASL              SASLConfig        `yaml:"sasl"`
}

// TLSConfig enables TLS to the brokers.
type TLSConfig struct {
	Enabled            bool   `yaml:"enabled"`
	CACert             string `yaml:"ca_cert"`
	Cert               string `yaml:"cert"`
	Key                string `yaml:"key"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// SASLConfig authenticates to the brokers.
type SASLConfig struct {
	Mechanism string `yaml:"mechanism"` // plain, scram-sha-256, scram-sha-512
	Username  string `yaml:"username"`
	Password  string `yaml:"password"`
}

// DefaultConfig returns the defaults (no brokers: Kafka off).
func DefaultConfig() Config {
	return Config{
		Topic:             "logweave-events",
		Group:             "logweave-indexer",
		CreateTopic:       true,
		Partitions:        6,
		ReplicationFactor: 1,
		Compression:       "snappy",
		BatchSize:         1000,
		BatchBytes:        1 << 20,
		Linger:            5 * time.Millisecond,
		FetchMaxBytes:     10 << 20,
	}
}

// Enabled reports whether brokers are configured.
func (c *Config) Enabled() bool { return len(c.Brokers) > 0 }

// Validate checks the section.
func (c *Config) Validate(prefix string) error {
	if !c.Enabled() {
		return nil
	}
	for i, b := range c.Brokers {
		if !strings.Contains(b, ":") {
			return fmt.Errorf("%s.brokers[%d]: %q must be host:port", prefix, i, b)
		}
	}
	if c.Topic == "" {
		return fmt.Errorf("%s.topic: must not be empty", prefix)
	}
	if c.Group == "" {
		return fmt.Errorf("%s.group: must not be empty", prefix)
	}
	if c.Partitions < 1 || c.ReplicationFactor < 1 {
		return fmt.Errorf("%s: partitions and replication_factor must be at least 1", prefix)
	}
	if _, err := c.codec(); err != nil {
		return fmt.Errorf("%s.compression: %w", prefix, err)
	}
	if c.BatchSize < 1 || c.BatchBytes < 1024 || c.Linger <= 0 || c.FetchMaxBytes < 1024 {
		return fmt.Errorf("%s: batch_size, batch_bytes, linger and fetch_max_bytes must be positive", prefix)
	}
	switch strings.ToLower(c.SASL.Mechanism) {
	case "":
	case "plain", "scram-sha-256", "scram-sha-512":
		if c.SASL.Username == "" {
			return fmt.Errorf("%s.sasl.username: required with mechanism %s", prefix, c.SASL.Mechanism)
		}
	default:
		return fmt.Errorf("%s.sasl.mechanism: %q is not plain, scram-sha-256 or scram-sha-512", prefix, c.SASL.Mechanism)
	}
	if (c.TLS.Cert == "") != (c.TLS.Key == "") {
		return fmt.Errorf("%s.tls: cert and key go together", prefix)
	}
	return nil
}

func (c *Config) codec() (kgo.Compression, error) {
	switch strings.ToLower(c.Compression) {
	case "none", "":
		return 0, nil
	case "gzip":
		return kgo.Gzip, nil
	case "snappy":
		return kgo.Snappy, nil
	case "lz4":
		return kgo.Lz4, nil
	case "zstd":
		return kgo.Zstd, nil
	}
	return 0, fmt.Errorf("%q is not zstd, lz4, snappy, gzip or none", c.Compression)
}

func (c *Config) tlsConfig() (*tls.Config, error) {
	if !c.TLS.Enabled {
		return nil, nil
	}
	tc := &tls.Config{InsecureSkipVerify: c.TLS.InsecureSkipVerify, MinVersion: tls.VersionTLS12}
	if c.TLS.CACert != "" {
		pem, err := os.ReadFile(c.TLS.CACert)
		if err != nil {
			return nil, fmt.Errorf("kafka.tls.ca_cert: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kafka.tls.ca_cert: no certificate in %s", c.TLS.CACert)
		}
		tc.RootCAs = pool
	}
	if c.TLS.Cert != "" {
		cert, err := tls.LoadX509KeyPair(c.TLS.Cert, c.TLS.Key)
		if err != nil {
			return nil, fmt.Errorf("kafka.tls.cert/key: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

func (c *Config) mechanism() (sasl.Mechanism, error) {
	switch strings.ToLower(c.SASL.Mechanism) {
	case "":
		return nil, nil
	case "plain":
		return plain.Mechanism{Username: c.SASL.Username, Password: c.SASL.Password}, nil
	case "scram-sha-256":
		return scram.Mechanism(scram.SHA256, c.SASL.Username, c.SASL.Password)
	case "scram-sha-512":
		return scram.Mechanism(scram.SHA512, c.SASL.Username, c.SASL.Password)
	}
	return nil, fmt.Errorf("kafka.sasl.mechanism: unknown %q", c.SASL.Mechanism)
}

// dialer returns a Dialer with the TLS and SASL settings.
func (c *Config) dialer() (*kgo.Dialer, error) {
	tc, err := c.tlsConfig()
	if err != nil {
		return nil, err
	}
	mech, err := c.mechanism()
	if err != nil {
		return nil, err
	}
	return &kgo.Dialer{Timeout: 10 * time.Second, DualStack: true, TLS: tc, SASLMechanism: mech}, nil
}
