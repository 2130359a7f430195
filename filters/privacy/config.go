package privacy

import (
	"fmt"
	"strings"
)

// Actions on a field (Config.Fields) or on what detection finds
// (Detect.Action).
const (
	Pseudonymize = "pseudonymize" // HMAC-SHA256 with the newest key: 32 hex digits, the same for the same value
	TruncateIP   = "truncate_ip"  // addresses kept to their /24 (IPv4) or /48 (IPv6) network
	Drop         = "drop"         // the field is removed
	Mask         = "mask"         // the value (or what was found) becomes [redacted] / [KIND]
	DropField    = "drop_field"   // detection: the field holding what was found is removed
)

// MinKeyBytes is the shortest pseudonym key accepted.
const MinKeyBytes = 32

// Config is the privacy: section (collector and shipper). Present, it
// scans every string for AllKinds and masks what it finds, unless told
// otherwise.
type Config struct {
	// Key: the secret of pseudonyms; a list for rotation, newest first
	// (new pseudonyms use the first; erase tries them all).
	Key Keys `yaml:"key"`
	// Fields: actions on fields by path (dotted; * matches any run of
	// characters, dots too: "*.password").
	Fields []FieldRule `yaml:"fields"`
	// Detect: what is looked for in every other string field.
	Detect DetectConfig `yaml:"detect"`
}

// FieldRule applies Action to the fields at Paths.
type FieldRule struct {
	Paths  []string `yaml:"paths"`
	Action string   `yaml:"action"` // pseudonymize | truncate_ip | drop | mask
}

// DetectConfig is privacy.detect.
type DetectConfig struct {
	// Kinds looked for; default (absent) AllKinds; [] none.
	Kinds []Kind `yaml:"kinds"`
	// Action on what is found: mask (default) | pseudonymize | drop_field.
	Action string `yaml:"action"`
	// AllowFields are never scanned (default: trace.id, http.request.id,
	// event.id, span.id). @timestamp, event.id and tags never are.
	AllowFields []string `yaml:"allow_fields"`
}

// DefaultConfig is what `privacy: {}` means.
func DefaultConfig() Config {
	return Config{Detect: DetectConfig{Action: Mask, AllowFields: []string{"trace.id", "http.request.id", "event.id", "span.id"}}}
}

// UnmarshalYAML fills the section's defaults first: `privacy: {}` scans
// for every kind and masks.
func (c *Config) UnmarshalYAML(unmarshal func(any) error) error {
	type plain Config
	p := plain(DefaultConfig())
	if err := unmarshal(&p); err != nil {
		return err
	}
	*c = Config(p)
	return nil
}

// Keys is one key or a list of them, newest first.
type Keys []string

// UnmarshalYAML takes a string or a list of strings.
func (k *Keys) UnmarshalYAML(unmarshal func(any) error) error {
	var one string
	if err := unmarshal(&one); err == nil {
		*k = nil
		if one != "" {
			*k = Keys{one}
		}
		return nil
	}
	var many []string
	if err := unmarshal(&many); err != nil {
		return fmt.Errorf("privacy.key: a string or a list of strings (newest first)")
	}
	*k = many
	return nil
}

// Validate checks the section, naming the key that is wrong.
func (c *Config) Validate(prefix string) error {
	for i, k := range c.Key {
		if len(k) < MinKeyBytes {
			return fmt.Errorf("%s.key[%d]: %d bytes; a pseudonym key needs at least %d (e.g. openssl rand -hex 32)", prefix, i, len(k), MinKeyBytes)
		}
	}
	needsKey := c.Detect.Action == Pseudonymize
	for i, r := range c.Fields {
		switch r.Action {
		case Pseudonymize:
			needsKey = true
		case TruncateIP, Drop, Mask:
		default:
			return fmt.Errorf("%s.fields[%d].action: %q is not pseudonymize, truncate_ip, drop or mask", prefix, i, r.Action)
		}
		if len(r.Paths) == 0 {
			return fmt.Errorf("%s.fields[%d].paths: none given", prefix, i)
		}
		for _, p := range r.Paths {
			if p == "" || strings.HasPrefix(p, ".") || strings.HasSuffix(p, ".") {
				return fmt.Errorf("%s.fields[%d].paths: %q is not a dotted field path", prefix, i, p)
			}
		}
	}
	switch c.Detect.Action {
	case Mask, Pseudonymize, DropField:
	default:
		return fmt.Errorf("%s.detect.action: %q is not mask, pseudonymize or drop_field", prefix, c.Detect.Action)
	}
	if _, err := NewFinder(c.Detect.Kinds); err != nil {
		return fmt.Errorf("%s.detect.kinds: %w", prefix, err)
	}
	if needsKey && len(c.Key) == 0 {
		return fmt.Errorf("%s.key: pseudonymize needs a key (at least %d bytes, e.g. ${LOGWEAVE_PSEUDONYM_KEY})", prefix, MinKeyBytes)
	}
	return nil
}
