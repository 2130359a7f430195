package pipeline

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/parser"
)

// Validator is implemented by configuration structs.
type Validator interface{ Validate() error }

// Preflighter is implemented by configurations that can check, without
// the network, what running them needs from this machine: files readable,
// directories writable, listen ports free of typos. LoadConfig calls it,
// so `validate` and `run` pass and fail alike.
type Preflighter interface{ Preflight() error }

// LoadConfig reads a YAML file into cfg, which must already hold its
// defaults, then validates it and runs its Preflight. ${VAR} and
// ${VAR:-default} are expanded first ($${ is a literal ${). Every unknown
// key and every value of the wrong shape is reported at once, each as
// "file:line: key.path: problem (expected …)" (a ConfigErrors). An empty
// file is valid when the defaults are.
func LoadConfig(path string, cfg Validator) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	err = parseConfig(data, cfg, os.LookupEnv, true)
	var ce ConfigErrors
	if errors.As(err, &ce) {
		for _, e := range ce {
			e.File = path
		}
		return ce
	}
	return err
}

// ParseConfig is LoadConfig on bytes, without the Preflight.
func ParseConfig(data []byte, cfg Validator) error {
	return ParseConfigEnv(data, cfg, os.LookupEnv)
}

// ParseConfigEnv is ParseConfig with the environment ${VAR} expands from
// (a deployment's, in the tests of deploy/).
func ParseConfigEnv(data []byte, cfg Validator, lookup func(string) (string, bool)) error {
	return parseConfig(data, cfg, lookup, false)
}

func parseConfig(data []byte, cfg Validator, lookup func(string) (string, bool), preflight bool) error {
	raw := strings.Split(string(data), "\n")
	expanded, err := ExpandEnv(data, lookup)
	if err != nil {
		return err
	}
	c := &checker{lines: map[string]int{}}
	if len(bytes.TrimSpace(stripComments(expanded))) > 0 {
		f, err := parser.ParseBytes(expanded, 0)
		if err != nil {
			return syntaxError(err, raw)
		}
		for _, doc := range f.Docs {
			if doc.Body != nil {
				c.node(doc.Body, reflect.TypeOf(cfg), "")
			}
		}
		if len(c.errs) > 0 {
			return c.errs
		}
		if err := yaml.UnmarshalWithOptions(expanded, cfg, yaml.Strict()); err != nil {
			e := &ConfigError{Msg: yamlMessage(err)}
			var ye yaml.Error
			if errors.As(err, &ye) && ye.GetToken() != nil {
				e.Line = ye.GetToken().Position.Line
			}
			return ConfigErrors{e}
		}
	}
	if err := cfg.Validate(); err != nil {
		return c.placed(err)
	}
	if p, ok := cfg.(Preflighter); ok && preflight {
		if err := p.Preflight(); err != nil {
			return c.placed(err)
		}
	}
	return nil
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
// $${ stands for a literal ${. Comments are left as they are: a commented
// out line naming a variable that is not set is not an error (the content
// of block scalars, | and >, is expanded whole: a # there is text).
func ExpandEnv(data []byte, lookup func(string) (string, bool)) ([]byte, error) {
	if !bytes.Contains(data, []byte("${")) {
		return data, nil
	}
	out := make([]byte, 0, len(data))
	block := -1 // the indentation of the line that opened a block scalar; -1: none
	for n, line := range bytes.SplitAfter(data, []byte("\n")) {
		indent := len(line) - len(bytes.TrimLeft(line, " "))
		blank := len(bytes.TrimSpace(line)) == 0
		text, comment := line, []byte(nil)
		if block >= 0 && (blank || indent > block) {
			// Block scalar content: all of it is the value.
		} else {
			block = -1
			if i := commentStart(line); i >= 0 {
				text, comment = line[:i], line[i:]
			}
			if blockIndicator(text) {
				block = indent
			}
		}
		var err error
		if out, err = expandLine(out, text, n+1, lookup); err != nil {
			return nil, err
		}
		out = append(out, comment...)
	}
	return out, nil
}

// expandLine appends text (one line, or its part before a comment) to out
// with its variables replaced.
func expandLine(out, text []byte, line int, lookup func(string) (string, bool)) ([]byte, error) {
	for i := 0; i < len(text); i++ {
		c := text[i]
		if c == '$' && i+2 < len(text) && text[i+1] == '$' && text[i+2] == '{' {
			out = append(out, '$', '{')
			i += 2
			continue
		}
		if c != '$' || i+1 >= len(text) || text[i+1] != '{' {
			out = append(out, c)
			continue
		}
		end := bytes.IndexByte(text[i:], '}')
		if end < 0 {
			return nil, ConfigErrors{{Line: line, Msg: "unclosed ${"}}
		}
		expr := string(text[i+2 : i+end])
		name, def, hasDef := strings.Cut(expr, ":-")
		if !validEnvName(name) {
			return nil, ConfigErrors{{Line: line, Msg: fmt.Sprintf("invalid variable name %q in ${%s}", name, expr)}}
		}
		val, ok := lookup(name)
		if !ok || (hasDef && val == "") {
			if !hasDef {
				return nil, ConfigErrors{{Line: line, Msg: fmt.Sprintf("environment variable %s is not set (use ${%s:-default} for a default)", name, name)}}
			}
			val = def
		}
		out = append(out, val...)
		i += end
	}
	return out, nil
}

// commentStart is where a YAML comment starts in line (-1: none): a # at
// the start or after a space or tab, outside quotes. A quote opens a quoted
// scalar only where a value may start (a quote inside a plain value, as in
// don't, is text); quoted scalars are taken to end on their line.
func commentStart(line []byte) int {
	var quote byte
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote == '"' && c == '\\':
			i++ // an escape: the next byte is text
		case quote != 0 && c == quote:
			if quote == '\'' && i+1 < len(line) && line[i+1] == '\'' {
				i++ // '' is a quote inside single quotes
				continue
			}
			quote = 0
		case quote != 0:
		case c == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t'):
			return i
		case (c == '"' || c == '\'') && valueStart(line[:i]):
			quote = c
		}
	}
	return -1
}

// valueStart reports whether a scalar may start after before: at the start
// of the line, after "key: ", "- ", or inside flow [ { ,.
func valueStart(before []byte) bool {
	t := bytes.TrimRight(before, " \t")
	if len(t) == 0 {
		return true
	}
	switch t[len(t)-1] {
	case '[', '{', ',':
		return true
	case ':', '-', '?':
		return len(t) < len(before) // an indicator, followed by a space
	}
	return false
}

// blockIndicator reports whether text (a line without its comment) ends in
// a block scalar's header: "key: |", "- >-", "key: |2".
func blockIndicator(text []byte) bool {
	t := bytes.TrimRight(text, " \t\r\n")
	i := len(t)
	for i > 0 && (t[i-1] == '-' || t[i-1] == '+' || t[i-1] >= '1' && t[i-1] <= '9') {
		i--
	}
	if i == 0 || t[i-1] != '|' && t[i-1] != '>' {
		return false
	}
	return i == 1 || t[i-2] == ' ' || t[i-2] == '\t'
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
	orig := s
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
		return 0, fmt.Errorf("%q is not a size (expected bytes, optionally with a unit: 1048576, 512KiB, 64MiB, 1GB)", orig)
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
			return fmt.Errorf("%s[%d]: %q must start with http:// or https://", key, i, RedactURL(u))
		}
	}
	return nil
}

// ValidateListen checks a listen address, "host:port" with a port from 0
// to 65535 (or a service name), naming key in its error.
func ValidateListen(key, addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%s: %q is not host:port (expected e.g. \"0.0.0.0:8080\" or \":8080\")", key, addr)
	}
	if n, err := strconv.Atoi(port); err == nil {
		if n < 0 || n > 65535 {
			return fmt.Errorf("%s: %q: port %d is out of range (expected 0 to 65535)", key, addr, n)
		}
		return nil
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return fmt.Errorf("%s: %q: port %q is neither a number nor a known service", key, addr, port)
	}
	return nil
}
