package collector

import (
	"crypto/tls"
	"fmt"
	"time"

	"github.com/logweave/logweave/deploy/kibana"
	"github.com/logweave/logweave/filters"
	"github.com/logweave/logweave/filters/privacy"
	"github.com/logweave/logweave/inputs/beats"
	"github.com/logweave/logweave/inputs/forward"
	"github.com/logweave/logweave/inputs/gelf"
	"github.com/logweave/logweave/inputs/ingest"
	"github.com/logweave/logweave/inputs/otlp"
	"github.com/logweave/logweave/inputs/syslog"
	"github.com/logweave/logweave/internal/fsutil"
	"github.com/logweave/logweave/outputs/elasticsearch"
	"github.com/logweave/logweave/outputs/file"
	"github.com/logweave/logweave/outputs/kafka"
	"github.com/logweave/logweave/pipeline"
)

// Config is the collector's YAML configuration. DefaultConfig makes an empty
// file valid: HTTP on 127.0.0.1:8080, the embedded buffer under ./data/buffer,
// and file output under ./data/out.
type Config struct {
	HTTP          HTTPConfig           `yaml:"http"`
	Buffer        BufferConfig         `yaml:"buffer"`
	Elasticsearch elasticsearch.Config `yaml:"elasticsearch"`
	FileOutput    file.Config          `yaml:"file_output"`
	Filters       FiltersConfig        `yaml:"filters"`
	// Privacy: present, personal data is redacted before anything is
	// stored (filters/privacy); absent, off.
	Privacy     *privacy.Config   `yaml:"privacy"`
	Correlation CorrelationConfig `yaml:"correlation"`
	Indexer     IndexerConfig     `yaml:"indexer"`
	Kafka       kafka.Config      `yaml:"kafka"`
	GELF        gelf.Config       `yaml:"gelf"`
	Forward     forward.Config    `yaml:"forward"`
	Syslog      syslog.Config     `yaml:"syslog"`
	Beats       beats.Config      `yaml:"beats"`
	OTLP        otlp.Config       `yaml:"otlp"`
	Kibana      kibana.Config     `yaml:"kibana"`
	// SummaryInterval: every so often one log line says what was received,
	// delivered and is waiting (0: never).
	SummaryInterval time.Duration `yaml:"summary_interval"`
}

// HTTPConfig is the listener for ingest, /metrics, /healthz and /readyz.
type HTTPConfig struct {
	Listen       string            `yaml:"listen"`
	MaxBodyBytes pipeline.ByteSize `yaml:"max_body_bytes"` // as sent and once decompressed
	MaxLines     int               `yaml:"max_lines"`      // per request
	// MaxConcurrentRequests are processed at once; others wait up to a
	// second for a turn, then get 429 + Retry-After.
	MaxConcurrentRequests int `yaml:"max_concurrent_requests"`
	// MaxConnections are held at once; further ones are closed at once.
	MaxConnections int           `yaml:"max_connections"`
	ReadTimeout    time.Duration `yaml:"read_timeout"` // a whole request, body included
	IdleTimeout    time.Duration `yaml:"idle_timeout"` // a kept-alive connection between requests
	// Token, when set, is required from senders as "Authorization: Bearer <token>".
	Token string `yaml:"token"`
	// MetricsAuth requires the token on /metrics too (a scraper then sends
	// it: Prometheus' authorization.credentials).
	MetricsAuth bool      `yaml:"metrics_auth"`
	TLS         ServerTLS `yaml:"tls"`
}

// ServerTLS serves HTTPS; with client_ca, clients must present a
// certificate signed by it (mTLS).
type ServerTLS = pipeline.ServerTLS

// BufferConfig is the embedded disk buffer.
type BufferConfig struct {
	Path         string            `yaml:"path"`
	MaxBytes     pipeline.ByteSize `yaml:"max_bytes"`
	SegmentBytes pipeline.ByteSize `yaml:"segment_bytes"`
}

// FiltersConfig tunes the filters every event passes.
type FiltersConfig struct {
	Timestamp filters.TimeRange  `yaml:"timestamp"`
	Text      filters.TextConfig `yaml:"text"`
}

// CorrelationConfig says where request ids are found and how requests
// become trace documents.
type CorrelationConfig struct {
	RequestIDFields []string `yaml:"request_id_fields"`
	// Traces are written to TracesIndex (Logstash-style pattern, from the
	// trace's first event) when their request has been quiet for Window;
	// at most MaxOpenTraces are held (the oldest is written first).
	// TracesIndex empty: no traces.
	TracesIndex   string        `yaml:"traces_index"`
	Window        time.Duration `yaml:"window"`
	MaxOpenTraces int           `yaml:"max_open_traces"`
	// MaxMemory bounds the estimated heap of the traces held; past it,
	// too, the oldest is written early (and merged with its later part).
	MaxMemory pipeline.ByteSize `yaml:"max_memory"`
}

// IndexerConfig sizes the batches read from the buffer.
type IndexerConfig struct {
	BatchSize  int               `yaml:"batch_size"`
	BatchBytes pipeline.ByteSize `yaml:"batch_bytes"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() *Config {
	return &Config{
		HTTP: HTTPConfig{Listen: "127.0.0.1:8080", MaxBodyBytes: ingest.DefaultMaxBodyBytes, MaxLines: ingest.DefaultMaxLines,
			MaxConcurrentRequests: ingest.DefaultMaxConcurrent, MaxConnections: 512, ReadTimeout: time.Minute, IdleTimeout: 2 * time.Minute},
		Buffer:        BufferConfig{Path: "./data/buffer", MaxBytes: 1 << 30, SegmentBytes: 64 << 20},
		Elasticsearch: elasticsearch.DefaultConfig(),
		FileOutput:    file.DefaultConfig(),
		Filters:       FiltersConfig{Timestamp: filters.DefaultTimeRange(), Text: filters.DefaultTextConfig()},
		Correlation: CorrelationConfig{RequestIDFields: append([]string(nil), filters.DefaultRequestIDFields...),
			TracesIndex: "traces-%{+yyyy.MM.dd}", Window: 30 * time.Second, MaxOpenTraces: 100000, MaxMemory: 16 << 20},
		Indexer: IndexerConfig{BatchSize: 2000, BatchBytes: 4 << 20},
		Kafka:   kafka.DefaultConfig(),
		GELF:    gelf.DefaultConfig(),
		Forward: forward.DefaultConfig(),
		Syslog:  syslog.DefaultConfig(),
		Beats:   beats.DefaultConfig(),
		OTLP:    otlp.DefaultConfig(),
		// Filebeat's logging.metrics.period.
		SummaryInterval: 30 * time.Second,
	}
}

// Validate checks every section, naming the key that is wrong.
func (c *Config) Validate() error {
	if err := pipeline.ValidateListen("http.listen", c.HTTP.Listen); err != nil {
		return err
	}
	if (c.HTTP.TLS.Cert == "") != (c.HTTP.TLS.Key == "") {
		return fmt.Errorf("http.tls: cert and key go together")
	}
	if c.HTTP.TLS.ClientCA != "" && c.HTTP.TLS.Cert == "" {
		return fmt.Errorf("http.tls.client_ca: needs http.tls.cert and key")
	}
	if c.HTTP.MetricsAuth && c.HTTP.Token == "" {
		return fmt.Errorf("http.metrics_auth: needs http.token (the token /metrics would require)")
	}
	if c.HTTP.MaxBodyBytes < 1024 {
		return fmt.Errorf("http.max_body_bytes: must be at least 1KiB")
	}
	if c.HTTP.MaxLines < 1 || c.HTTP.MaxConcurrentRequests < 1 || c.HTTP.MaxConnections < 1 {
		return fmt.Errorf("http: max_lines, max_concurrent_requests and max_connections must be at least 1")
	}
	if c.HTTP.ReadTimeout <= 0 || c.HTTP.IdleTimeout <= 0 {
		return fmt.Errorf("http: read_timeout and idle_timeout must be positive")
	}
	if c.Buffer.Path == "" {
		return fmt.Errorf("buffer.path: must not be empty")
	}
	if c.Buffer.SegmentBytes < 4096 {
		return fmt.Errorf("buffer.segment_bytes: must be at least 4KiB")
	}
	if c.Buffer.MaxBytes < 2*c.Buffer.SegmentBytes {
		return fmt.Errorf("buffer.max_bytes: must be at least twice buffer.segment_bytes (%d)", c.Buffer.SegmentBytes)
	}
	if err := c.GELF.Validate("gelf"); err != nil {
		return err
	}
	if err := c.Forward.Validate("forward"); err != nil {
		return err
	}
	if err := c.Syslog.Validate("syslog"); err != nil {
		return err
	}
	if err := c.Beats.Validate("beats"); err != nil {
		return err
	}
	if err := c.OTLP.Validate("otlp"); err != nil {
		return err
	}
	if err := c.Kafka.Validate("kafka"); err != nil {
		return err
	}
	if err := c.Elasticsearch.Validate("elasticsearch"); err != nil {
		return err
	}
	if len(c.Elasticsearch.URLs) == 0 && c.FileOutput.Path == "" {
		return fmt.Errorf("file_output.path: must be set when elasticsearch.urls is empty")
	}
	if err := c.Filters.Text.Validate("filters.text"); err != nil {
		return err
	}
	if err := c.Filters.Timestamp.Validate("filters.timestamp"); err != nil {
		return err
	}
	if c.Privacy != nil {
		if err := c.Privacy.Validate("privacy"); err != nil {
			return err
		}
	}
	if err := c.FileOutput.Validate("file_output"); err != nil {
		return err
	}
	if len(c.Correlation.RequestIDFields) == 0 {
		return fmt.Errorf("correlation.request_id_fields: must list at least one field")
	}
	// elasticsearch.traces_index was reserved before traces existed; they
	// went to correlation.traces_index. Setting the old key to something
	// else would silently do nothing: say where it goes.
	if old := c.Elasticsearch.TracesIndex; old != elasticsearch.DefaultConfig().TracesIndex && old != c.Correlation.TracesIndex {
		return fmt.Errorf("elasticsearch.traces_index: no longer used; set correlation.traces_index: %q instead", old)
	}
	if c.Correlation.TracesIndex != "" {
		if _, err := pipeline.ParseIndexPattern(c.Correlation.TracesIndex); err != nil {
			return fmt.Errorf("correlation.traces_index: %w", err)
		}
		if c.Correlation.Window <= 0 || c.Correlation.MaxOpenTraces < 1 {
			return fmt.Errorf("correlation: window must be positive and max_open_traces at least 1")
		}
		if c.Correlation.MaxMemory < 1<<20 {
			return fmt.Errorf("correlation.max_memory: must be at least 1MiB")
		}
	}
	if c.SummaryInterval < 0 {
		return fmt.Errorf("summary_interval: must not be negative (0 turns the summary off)")
	}
	if c.Indexer.BatchSize < 1 {
		return fmt.Errorf("indexer.batch_size: must be at least 1")
	}
	if c.Indexer.BatchBytes < 4096 {
		return fmt.Errorf("indexer.batch_bytes: must be at least 4KiB")
	}
	return nil
}

// Preflight checks, without the network, what run needs from this
// machine: the TLS files load, the buffer and output directories can be
// written. `collector validate` and `collector run` both call it (through
// Load).
func (c *Config) Preflight() error {
	if t := c.HTTP.TLS; t.Cert != "" {
		if _, err := tls.LoadX509KeyPair(t.Cert, t.Key); err != nil {
			return fmt.Errorf("http.tls.cert: %w", err)
		}
		if t.ClientCA != "" {
			if err := fsutil.Readable(t.ClientCA); err != nil {
				return fmt.Errorf("http.tls.client_ca: %w", err)
			}
		}
	}
	for prefix, t := range map[string]pipeline.ServerTLS{"forward.tls": c.Forward.TLS, "beats.tls": c.Beats.TLS} {
		if _, err := t.Config(prefix); err != nil {
			return err
		}
	}
	if !c.Kafka.Enabled() {
		if err := fsutil.WritableDir(c.Buffer.Path); err != nil {
			return fmt.Errorf("buffer.path: %q cannot be written: %w", c.Buffer.Path, err)
		}
	}
	if len(c.Elasticsearch.URLs) == 0 {
		if err := fsutil.WritableDir(c.FileOutput.Path); err != nil {
			return fmt.Errorf("file_output.path: %q cannot be written: %w", c.FileOutput.Path, err)
		}
	}
	if k := c.Kafka.TLS; k.Cert != "" {
		if _, err := tls.LoadX509KeyPair(k.Cert, k.Key); err != nil {
			return fmt.Errorf("kafka.tls.cert: %w", err)
		}
	}
	for key, f := range map[string]string{"elasticsearch.ca_cert": c.Elasticsearch.CACert, "kafka.tls.ca_cert": c.Kafka.TLS.CACert} {
		if f != "" {
			if err := fsutil.Readable(f); err != nil {
				return fmt.Errorf("%s: %w", key, err)
			}
		}
	}
	return nil
}

// Load reads a configuration file (none: the defaults), validates it and
// runs its Preflight.
func Load(path string) (*Config, error) {
	c := DefaultConfig()
	if path == "" {
		if err := c.Validate(); err != nil {
			return nil, err
		}
		return c, c.Preflight()
	}
	if err := pipeline.LoadConfig(path, c); err != nil {
		return nil, err
	}
	return c, nil
}
