package shipper

import (
	"crypto/tls"
	"fmt"
	"time"

	"github.com/logweave/logweave/filters/privacy"
	"github.com/logweave/logweave/inputs/forward"
	"github.com/logweave/logweave/inputs/gelf"
	"github.com/logweave/logweave/inputs/syslog"
	"github.com/logweave/logweave/inputs/tail"
	"github.com/logweave/logweave/internal/fsutil"
	"github.com/logweave/logweave/kubemeta"
	"github.com/logweave/logweave/outputs/collector"
	"github.com/logweave/logweave/pipeline"
)

// Config is the shipper's YAML configuration.
type Config struct {
	Collector collector.Config `yaml:"collector"`
	State     StateConfig      `yaml:"state"`
	Host      HostConfig       `yaml:"host"`
	Inputs    []InputConfig    `yaml:"inputs"`
	HTTP      HTTPConfig       `yaml:"http"`
	// Kubernetes: per-pod settings from annotations (kubemeta).
	Kubernetes kubemeta.Config `yaml:"kubernetes"`
	// Privacy: present, personal data is redacted before a line is sent
	// or spooled (filters/privacy), for data that must not leave the node.
	Privacy *privacy.Config `yaml:"privacy"`
	// QueueSize bounds the lines (and messages) read ahead of the sender
	// (default 1024: the sender takes up to a batch at a time; more held
	// ~3 MiB more for no speed).
	QueueSize int `yaml:"queue_size"`
	// SummaryInterval: every so often one log line says what was read,
	// sent and acknowledged (0: never).
	SummaryInterval time.Duration `yaml:"summary_interval"`
}

// HTTPConfig is the optional listener for /metrics and /healthz.
type HTTPConfig struct {
	Listen string `yaml:"listen"` // empty: no listener
}

// StateConfig says where checkpoints live.
type StateConfig struct {
	Path string `yaml:"path"`
	// FlushInterval: checkpoints of acknowledged lines are written at most
	// this often (default 1s, as Filebeat's registry.flush; 0: after every
	// batch). After a crash, what was acknowledged since is sent again,
	// under the same ids: it overwrites itself.
	FlushInterval time.Duration `yaml:"flush_interval"`
}

// HostConfig names this host in events (host.name); default: the hostname.
type HostConfig struct {
	Name string `yaml:"name"`
}

// InputConfig is one entry of inputs:, of type file (the tail options),
// or a listening input with its spool: gelf, syslog or forward (that
// listener's options, as the collector's section of the same name has
// them).
type InputConfig struct {
	Type        string `yaml:"type"`
	tail.Config `yaml:",inline"`
	GELF        gelf.Config    `yaml:",inline"`
	Syslog      syslog.Config  `yaml:"-"`
	Forward     forward.Config `yaml:"-"`
	Spool       SpoolConfig    `yaml:"spool"`
}

// UnmarshalYAML fills an input with its type's defaults and decodes the
// keys of its type.
func (in *InputConfig) UnmarshalYAML(unmarshal func(any) error) error {
	var raw map[string]any // the type first (strict decoding refuses a struct of it alone)
	if err := unmarshal(&raw); err != nil {
		return err
	}
	typ, _ := raw["type"].(string)
	*in = InputConfig{Type: typ, Config: tail.DefaultConfig(), GELF: gelf.DefaultConfig(),
		Syslog: syslog.DefaultConfig(), Forward: forward.DefaultConfig(), Spool: DefaultSpoolConfig()}
	switch typ {
	case "syslog":
		k := syslogInputKeys{Type: typ, Config: in.Syslog, Spool: in.Spool}
		if err := unmarshal(&k); err != nil {
			return err
		}
		in.Syslog, in.Spool = k.Config, k.Spool
	case "forward":
		k := forwardInputKeys{Type: typ, Config: in.Forward, Spool: in.Spool}
		if err := unmarshal(&k); err != nil {
			return err
		}
		in.Forward, in.Spool = k.Config, k.Spool
	default:
		type plain InputConfig
		p := plain(*in)
		if err := unmarshal(&p); err != nil {
			return err
		}
		*in = InputConfig(p)
	}
	return nil
}

// ConfigVariants gives each input type its own keys, so a file input's
// `listen` or a gelf input's `paths` is an error naming its line.
func (in *InputConfig) ConfigVariants() (string, map[string]any) {
	return "type", map[string]any{"file": fileInputKeys{}, "gelf": gelfInputKeys{},
		"syslog": syslogInputKeys{}, "forward": forwardInputKeys{}}
}

// fileInputKeys, gelfInputKeys, syslogInputKeys and forwardInputKeys are
// the keys of each input type.
type fileInputKeys struct {
	Type        string `yaml:"type"`
	tail.Config `yaml:",inline"`
}

type gelfInputKeys struct {
	Type        string `yaml:"type"`
	gelf.Config `yaml:",inline"`
	Spool       SpoolConfig `yaml:"spool"`
}

type syslogInputKeys struct {
	Type          string `yaml:"type"`
	syslog.Config `yaml:",inline"`
	Spool         SpoolConfig `yaml:"spool"`
}

type forwardInputKeys struct {
	Type           string `yaml:"type"`
	forward.Config `yaml:",inline"`
	Spool          SpoolConfig `yaml:"spool"`
}

// DefaultConfig returns the defaults; a configuration must add inputs.
func DefaultConfig() *Config {
	return &Config{
		Collector:       collector.DefaultConfig(),
		Kubernetes:      kubemeta.DefaultConfig(),
		State:           StateConfig{Path: "./data/shipper", FlushInterval: time.Second},
		QueueSize:       1024,
		SummaryInterval: 30 * time.Second,
	}
}

// Validate checks the configuration, naming the key that is wrong.
func (c *Config) Validate() error {
	if err := c.Collector.Validate("collector"); err != nil {
		return err
	}
	if c.State.Path == "" {
		return fmt.Errorf("state.path: must not be empty")
	}
	if c.State.FlushInterval < 0 {
		return fmt.Errorf("state.flush_interval: must not be negative (0 writes after every batch)")
	}
	if c.HTTP.Listen != "" {
		if err := pipeline.ValidateListen("http.listen", c.HTTP.Listen); err != nil {
			return err
		}
	}
	if err := c.Kubernetes.Validate("kubernetes"); err != nil {
		return err
	}
	if c.Privacy != nil {
		if err := c.Privacy.Validate("privacy"); err != nil {
			return err
		}
	}
	if c.SummaryInterval < 0 {
		return fmt.Errorf("summary_interval: must not be negative (0 turns the summary off)")
	}
	if c.QueueSize < 1 {
		return fmt.Errorf("queue_size: must be at least 1")
	}
	if len(c.Inputs) == 0 {
		return fmt.Errorf("inputs: none configured, so there is nothing to ship (add e.g. - {type: file, paths: [/var/log/app/*.log]})")
	}
	for i := range c.Inputs {
		in := &c.Inputs[i]
		prefix := fmt.Sprintf("inputs[%d]", i)
		switch in.Type {
		case "file":
			if err := in.Config.Validate(prefix); err != nil {
				return err
			}
		case "gelf":
			if in.GELF.Listen == "" {
				return fmt.Errorf("%s.listen: a gelf input needs an address, e.g. \"0.0.0.0:12201\"", prefix)
			}
			if err := in.GELF.Validate(prefix); err != nil {
				return err
			}
		case "syslog":
			if in.Syslog.Listen == "" {
				return fmt.Errorf("%s.listen: a syslog input needs an address, e.g. \"0.0.0.0:5514\"", prefix)
			}
			if err := in.Syslog.Validate(prefix); err != nil {
				return err
			}
		case "forward":
			if in.Forward.Listen == "" {
				return fmt.Errorf("%s.listen: a forward input needs an address, e.g. \"0.0.0.0:24224\"", prefix)
			}
			if err := in.Forward.Validate(prefix); err != nil {
				return err
			}
		case "":
			return fmt.Errorf("%s.type: missing (file, gelf, syslog or forward)", prefix)
		default:
			return fmt.Errorf("%s.type: %q is not supported (supported: file, gelf, syslog, forward)", prefix, in.Type)
		}
		if in.Type != "file" && in.Spool.MaxBytes < 1<<20 {
			return fmt.Errorf("%s.spool.max_bytes: must be at least 1MiB", prefix)
		}
	}
	return nil
}

// Preflight checks, without the network, what run needs from this
// machine: the state directory (checkpoints, spools) can be written and
// the TLS files load. `shipper validate` and `shipper run` both call it.
func (c *Config) Preflight() error {
	if err := fsutil.WritableDir(c.State.Path); err != nil {
		return fmt.Errorf("state.path: %q cannot be written: %w", c.State.Path, err)
	}
	for i, in := range c.Inputs {
		if in.Type == "forward" {
			if _, err := in.Forward.TLS.Config(fmt.Sprintf("inputs[%d].tls", i)); err != nil {
				return err
			}
		}
	}
	if k := c.Kubernetes; k.Annotations && k.CAFile != "" {
		if err := fsutil.Readable(k.CAFile); err != nil {
			return fmt.Errorf("kubernetes.ca_file: %w (set automountServiceAccountToken, or ca_file)", err)
		}
	}
	t := c.Collector.TLS
	if t.Cert != "" {
		if _, err := tls.LoadX509KeyPair(t.Cert, t.Key); err != nil {
			return fmt.Errorf("collector.tls.cert: %w", err)
		}
	}
	if t.CACert != "" {
		if err := fsutil.Readable(t.CACert); err != nil {
			return fmt.Errorf("collector.tls.ca_cert: %w", err)
		}
	}
	return nil
}

// Load reads and validates a configuration file.
func Load(path string) (*Config, error) {
	c := DefaultConfig()
	if err := pipeline.LoadConfig(path, c); err != nil {
		return nil, err
	}
	return c, nil
}
