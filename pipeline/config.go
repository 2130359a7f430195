package pipeline

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"
)

// Validator is implemented by configuration structs.
type Validator interface{ Validate() error }

// LoadConfig reads a YAML file into cfg, which must already hold its defaults.
// ${VAR} and ${VAR:-default} are expanded first ($${ is a literal ${); unknown
// keys are errors that name the key and its line. An empty file is valid.
func LoadConfig(path string, cfg Validator) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := ParseConfig(data, cfg); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// ParseConfig is LoadConfig on bytes.
func ParseConfig(data []byte, cfg Validator) error {
	return ParseConfigEnv(data, cfg, os.LookupEnv)
}

// ParseConfigEnv is ParseConfig with the environment ${VAR} expands from
// (a deployment's, in the tests of deploy/).
func ParseConfigEnv(data []byte, cfg Validator, lookup func(string) (string, bool)) error {
	expanded, err := ExpandEnv(data, lookup)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(stripComments(expanded))) > 0 {
		if err := yaml.UnmarshalWithOptions(expanded, cfg, yaml.Strict()); err != nil {
			return errors.New(yaml.FormatError(err, false, true))
		}
	}
	return cfg.Validate()
}

func stripComments(b []byte) []byte {
	var out []byte
	for _, line := range bytes.Split(b, []byte("\n")) {
		t := bytes.TrimSpace(line)
		if len(t) == 0 || t[0] == '#' || string(t) == "---" {
			continue
		}
		out = append(out, t...)
	}
	return out
}

// ExpandEnv replaces ${VAR} and ${VAR:-default} in data. A variable that is
// unset and has no default is an error naming it and its line, so a typo in
// a variable name fails at start instead of shipping to the wrong place.
func ExpandEnv(data []byte, lookup func(string) (string, bool)) ([]byte, error) {
	if !bytes.Contains(data, []byte("${")) {
		return data, nil
	}
	var out []byte
	line := 1
	for i := 0; i < len(data); i++ {
		c := data[i]
		if c == '\n' {
			line++
		}
		if c == '$' && i+2 < len(data) && data[i+1] == '$' && data[i+2] == '{' {
			out = append(out, '$', '{')
			i += 2
			continue
		}
		if c != '$' || i+1 >= len(data) || data[i+1] != '{' {
			out = append(out, c)
			continue
		}
		end := bytes.IndexByte(data[i:], '}')
		if end < 0 {
			return nil, fmt.Errorf("line %d: unclosed ${", line)
		}
		expr := string(data[i+2 : i+end])
		name, def, hasDef := strings.Cut(expr, ":-")
		if !validEnvName(name) {
			return nil, fmt.Errorf("line %d: invalid variable name %q in ${%s}", line, name, expr)
		}
		val, ok := lookup(name)
		if !ok || (hasDef && val == "") {
			if !hasDef {
				return nil, fmt.Errorf("line %d: environment variable %s is not set (use ${%s:-default} for a default)", line, name, name)
			}
			val = def
		}
		out = append(out, val...)
		i += end
	}
	return out, nil
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		if c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9' {
			continue
		}
		return false
	}
	return true
}

// ByteSize is a size in bytes written as a number or with a unit: 512KiB,
// 64MiB, 1GiB (powers of 1024) or 1MB, 1GB (powers of 1000).
type ByteSize int64

// UnmarshalYAML implements goccy/go-yaml's BytesUnmarshaler.
func (b *ByteSize) UnmarshalYAML(data []byte) error {
	s := strings.Trim(strings.TrimSpace(string(data)), `"'`)
	n, err := ParseByteSize(s)
	if err != nil {
		return err
	}
	*b = n
	return nil
}

// ParseByteSize parses "1048576", "1MiB", "10MB", "512 KiB".
func ParseByteSize(s string) (ByteSize, error) {
	s = strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
		{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			mult = u.mult
			s = strings.TrimSpace(strings.TrimSuffix(s, u.suffix))
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("invalid size %q (want e.g. 1048576, 64MiB, 1GB)", s)
	}
	return ByteSize(n * mult), nil
}

// RedactURL is u with a password in it replaced by "xxxxx", for logs and
// metric labels.
func RedactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.User == nil {
		return u
	}
	return p.Redacted()
}

// RedactURLs is RedactURL for each.
func RedactURLs(urls []string) []string {
	out := make([]string, len(urls))
	for i, u := range urls {
		out[i] = RedactURL(u)
	}
	return out
}

// ValidateURLs checks that every URL is http:// or https://; key names the
// list in messages (e.g. "collector.urls").
func ValidateURLs(key string, urls []string) error {
	for i, u := range urls {
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			return fmt.Errorf("%s[%d]: %q must start with http:// or https://", key, i, u)
		}
	}
	return nil
}
