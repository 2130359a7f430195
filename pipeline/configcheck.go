package pipeline

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
)

// ConfigError is one problem in a configuration file, printed as
// "file:line: key.path: problem (expected …)".
type ConfigError struct {
	File    string
	Line    int    // 0: the key is not in the file (its default is wrong)
	Path    string // the key, e.g. inputs[0].max_line_bytes; empty for syntax
	Msg     string
	Excerpt string // the line as written (before ${VAR} expansion, secrets masked)
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0:
		fmt.Fprintf(&b, "%s:%d: ", e.File, e.Line)
	case e.File != "":
		b.WriteString(e.File + ": ")
	case e.Line > 0:
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Msg)
	if e.Excerpt != "" {
		fmt.Fprintf(&b, "\n    %d | %s", e.Line, e.Excerpt)
	}
	return b.String()
}

// ConfigErrors are all the problems found in one file.
type ConfigErrors []*ConfigError

func (es ConfigErrors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Variants is implemented by a section whose keys depend on one of its
// values, like an input's type: ConfigVariants names that key and gives,
// for each of its values, a zero value of the struct whose keys that
// variant accepts. A key of another variant is then an error.
type Variants interface {
	ConfigVariants() (key string, variants map[string]any)
}

var (
	durationType = reflect.TypeFor[time.Duration]()
	byteSizeType = reflect.TypeFor[ByteSize]()
	variantsType = reflect.TypeFor[Variants]()
)

// checker walks a YAML document along the Go type it decodes into and
// records every unknown key and every value of the wrong shape, with its
// line, before anything is decoded.
type checker struct {
	errs  ConfigErrors
	lines map[string]int // key path → line, for errors found later (Validate)
}

func (c *checker) fail(n ast.Node, path, msg string) {
	c.errs = append(c.errs, &ConfigError{Line: line(n), Path: path, Msg: msg})
}

func line(n ast.Node) int {
	if n == nil || n.GetToken() == nil {
		return 0
	}
	return n.GetToken().Position.Line
}

func unwrap(n ast.Node) ast.Node {
	for {
		switch v := n.(type) {
		case *ast.TagNode:
			n = v.Value
		case *ast.AnchorNode:
			n = v.Value
		default:
			return n
		}
	}
}

func (c *checker) node(n ast.Node, t reflect.Type, path string) {
	n = unwrap(n)
	if n == nil || n.Type() == ast.NullType {
		return
	}
	if _, ok := n.(*ast.AliasNode); ok {
		return // checked where its anchor is
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case reflect.PointerTo(t).Implements(variantsType):
		c.variants(n, t, path)
		return
	case t == durationType:
		s, ok := n.(*ast.StringNode)
		if !ok {
			c.fail(n, path, fmt.Sprintf("%s is not a duration (expected a number with a unit: 30s, 5m, 1h30m)", n))
			return
		}
		if _, err := time.ParseDuration(s.Value); err != nil {
			c.fail(n, path, fmt.Sprintf("%q is not a duration (expected a number with a unit: 500ms, 30s, 5m, 1h30m; units ns, us, ms, s, m, h)", s.Value))
		}
		return
	case t == byteSizeType:
		if _, err := ParseByteSize(scalarText(n)); err != nil {
			c.fail(n, path, err.Error())
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if customDecoded(t) {
			c.leaf(n, t, path)
			return
		}
		fields := map[string]reflect.Type{}
		yamlFields(t, fields)
		c.mapping(n, path, fields, "")
	case reflect.Slice:
		if customDecoded(t) || t.Elem().Kind() == reflect.Uint8 {
			c.leaf(n, t, path)
			return
		}
		seq, ok := n.(*ast.SequenceNode)
		if !ok {
			c.fail(n, path, "expected a list, e.g. [a, b] or lines starting with \"- \"")
			return
		}
		for i, e := range seq.Values {
			p := fmt.Sprintf("%s[%d]", path, i)
			c.lines[p] = line(e)
			c.node(e, t.Elem(), p)
		}
	case reflect.Map:
		m, ok := n.(*ast.MappingNode)
		if !ok {
			c.fail(n, path, "expected a mapping of keys to values")
			return
		}
		for _, mv := range m.Values {
			k := keyName(mv.Key)
			p := join(path, k)
			c.lines[p] = line(mv.Key)
			c.node(mv.Value, t.Elem(), p)
		}
	case reflect.Interface:
	default:
		c.leaf(n, t, path)
	}
}

// mapping checks a mapping's keys against fields; variant names the
// variant in messages ("a file input").
func (c *checker) mapping(n ast.Node, path string, fields map[string]reflect.Type, variant string) {
	m, ok := n.(*ast.MappingNode)
	if !ok {
		c.fail(n, path, "expected a mapping (key: value lines, or {key: value})")
		return
	}
	for _, mv := range m.Values {
		if _, merge := mv.Key.(*ast.MergeKeyNode); merge {
			continue
		}
		k := keyName(mv.Key)
		p := join(path, k)
		c.lines[p] = line(mv.Key)
		ft, ok := fields[k]
		if !ok {
			what := "unknown key"
			if variant != "" {
				what = "not a key of " + variant
			}
			c.fail(mv.Key, p, what+suggest(k, fields))
			continue
		}
		c.node(mv.Value, ft, p)
	}
}

func (c *checker) variants(n ast.Node, t reflect.Type, path string) {
	key, vs := reflect.New(t).Interface().(Variants).ConfigVariants()
	if m, ok := n.(*ast.MappingNode); ok {
		for _, mv := range m.Values {
			if keyName(mv.Key) != key {
				continue
			}
			name := scalarText(unwrap(mv.Value))
			if v, ok := vs[name]; ok {
				fields := map[string]reflect.Type{}
				yamlFields(reflect.TypeOf(v), fields)
				c.mapping(n, path, fields, fmt.Sprintf("a %s %s", name, strings.TrimSuffix(lastKey(path), "s")))
				return
			}
		}
	}
	// No or an unknown variant (Validate says so): the keys of any.
	fields := map[string]reflect.Type{}
	for _, v := range vs {
		yamlFields(reflect.TypeOf(v), fields)
	}
	c.mapping(n, path, fields, "")
}

// leaf decodes one value on its own, so a type error names its key.
func (c *checker) leaf(n ast.Node, t reflect.Type, path string) {
	v := reflect.New(t)
	err := yaml.NodeToValue(n, v.Interface())
	switch t.Kind() {
	case reflect.Bool:
		if _, ok := n.(*ast.BoolNode); !ok {
			err = errors.New("")
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if _, ok := n.(*ast.IntegerNode); !ok {
			err = errors.New("")
		}
	case reflect.String:
		if !isScalar(n) {
			err = errors.New("")
		}
	}
	if err == nil {
		return
	}
	shown := fmt.Sprintf("%q", scalarText(n))
	if !isScalar(n) {
		shown = "a " + strings.ToLower(n.Type().String())
	}
	if SecretKey(lastKey(path)) {
		shown = "the value"
	}
	var msg string
	switch kind := t.Kind(); {
	case customDecoded(t) && err != nil:
		// The type's own words ("compression: "brotli" is not zstd, gzip
		// or none"), without repeating the key.
		msg = strings.TrimPrefix(yamlMessage(err), lastKey(path)+": ")
	case kind == reflect.Bool:
		msg = shown + " is not a boolean (expected true or false)"
	case kind >= reflect.Int && kind <= reflect.Uint64:
		msg = shown + " is not a whole number (expected e.g. 100)"
	case kind == reflect.Float32 || kind == reflect.Float64:
		msg = shown + " is not a number (expected e.g. 0.5)"
	case kind == reflect.String:
		msg = shown + " is not text (expected a single value; quote it if it has : or #)"
	default:
		msg = yamlMessage(err)
	}
	c.fail(n, path, msg)
}

func isScalar(n ast.Node) bool {
	switch n.(type) {
	case *ast.StringNode, *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode, *ast.LiteralNode:
		return true
	}
	return false
}

func scalarText(n ast.Node) string {
	switch v := n.(type) {
	case *ast.StringNode:
		return v.Value
	case *ast.LiteralNode:
		return v.Value.Value
	case nil:
		return ""
	}
	return n.String()
}

func keyName(k ast.MapKeyNode) string {
	return scalarText(unwrap(k))
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func lastKey(path string) string {
	if i := strings.LastIndexByte(path, '['); i > 0 && strings.HasSuffix(path, "]") {
		path = path[:i]
	}
	return path[strings.LastIndexByte(path, '.')+1:]
}

// customDecoded reports whether t decodes itself (an UnmarshalYAML).
func customDecoded(t reflect.Type) bool {
	p := reflect.PointerTo(t)
	return p.Implements(reflect.TypeFor[yaml.BytesUnmarshaler]()) ||
		p.Implements(reflect.TypeFor[yaml.InterfaceUnmarshaler]()) ||
		p.Implements(reflect.TypeFor[interface{ UnmarshalText([]byte) error }]())
}

// yamlFields adds t's keys, as goccy/go-yaml names them, to into.
func yamlFields(t reflect.Type, into map[string]reflect.Type) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(","+opts+",", ",inline,") {
			yamlFields(f.Type, into)
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		into[name] = f.Type
	}
}

// suggest names the closest known key, or lists them.
func suggest(k string, fields map[string]reflect.Type) string {
	names := make([]string, 0, len(fields))
	best, bestD := "", 3
	for name := range fields {
		names = append(names, name)
		if d := editDistance(k, name); d < bestD || d == bestD && name < best {
			best, bestD = name, d
		}
	}
	if best != "" && bestD <= 2 {
		return fmt.Sprintf(" (did you mean %s?)", best)
	}
	sort.Strings(names)
	return " (known: " + strings.Join(names, ", ") + ")"
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// yamlMessage is a goccy/go-yaml error without its source excerpt (which
// would show the value after ${VAR} expansion).
func yamlMessage(err error) string {
	var ye yaml.Error
	if errors.As(err, &ye) {
		return ye.GetMessage()
	}
	return err.Error()
}

var secretKey = regexp.MustCompile(`(?i)(password|passwd|token|api_?key|secret|credential|(^|_)key)$`)

// SecretKey reports whether a key holds a secret (password, token,
// api_key, secret, key …), whose value is never shown.
func SecretKey(key string) bool { return secretKey.MatchString(key) }

var keyLine = regexp.MustCompile(`^(\s*(?:-\s+)?["']?([A-Za-z0-9_.-]+)["']?\s*:\s*)(\S.*)$`)

// excerpt is line n of raw as written, a secret's value masked.
func excerpt(raw []string, n int) string {
	if n < 1 || n > len(raw) {
		return ""
	}
	l := strings.TrimRight(raw[n-1], "\r")
	if m := keyLine.FindStringSubmatch(l); m != nil && SecretKey(m[2]) {
		return m[1] + "***"
	}
	if len(l) > 200 {
		l = l[:200] + "…"
	}
	return l
}

var errPath = regexp.MustCompile(`^([a-z_][a-z0-9_]*(?:\[\d+\])?(?:\.[a-z_][a-z0-9_]*(?:\[\d+\])?)*):\s+(.*)$`)

// placed turns an error from Validate ("key.path: problem") into a
// ConfigError with the key's line, when the key is in the file.
func (c *checker) placed(err error) ConfigErrors {
	var ce ConfigErrors
	if errors.As(err, &ce) {
		return ce
	}
	var out ConfigErrors
	for _, msg := range strings.Split(err.Error(), "\n") {
		e := &ConfigError{Msg: msg}
		if m := errPath.FindStringSubmatch(msg); m != nil {
			e.Path, e.Msg = m[1], m[2]
			for p := m[1]; p != ""; p = parent(p) {
				if l, ok := c.lines[p]; ok {
					e.Line = l
					break
				}
			}
		}
		out = append(out, e)
	}
	return out
}

func parent(p string) string {
	if strings.HasSuffix(p, "]") {
		return p[:strings.LastIndexByte(p, '[')]
	}
	if i := strings.LastIndexByte(p, '.'); i >= 0 {
		return p[:i]
	}
	return ""
}

// syntaxError places a YAML syntax error on its line, with the line as
// written (not as expanded).
func syntaxError(err error, raw []string) ConfigErrors {
	e := &ConfigError{Msg: yamlMessage(err)}
	var ye yaml.Error
	if errors.As(err, &ye) && ye.GetToken() != nil {
		e.Line = ye.GetToken().Position.Line
		e.Excerpt = excerpt(raw, e.Line)
	}
	return ConfigErrors{e}
}
