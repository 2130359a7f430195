package privacy

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"net/netip"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/tidwall/gjson"

	"github.com/logweave/logweave/pipeline"
)

var redactions = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "logweave_privacy_redactions_total",
	Help: "Personal data redacted before anything was stored: kind is what detection found (email, credit_card, ...) or field (a configured field), action what was done.",
}, []string{"kind", "action"})

// Redactor applies a privacy Config to encoded documents. Safe for
// concurrent use.
type Redactor struct {
	finder  Finder
	scan    bool // some kinds are looked for
	action  string
	exact   map[string]string // path -> action, or allowed (never scanned)
	stars   []rule            // rules whose paths have a *
	words   [][]string        // each rule's path's words: all in a document, or it cannot apply
	keys    []string
	pool    sync.Pool // of *scratch
	counter map[[2]string]prometheus.Counter
}

type rule struct {
	glob   string
	parts  []string // glob split at its stars; one part: no star
	action string
}

// New returns the redactor of a validated Config.
func New(c Config) (*Redactor, error) {
	if err := c.Validate("privacy"); err != nil {
		return nil, err
	}
	f, _ := NewFinder(c.Detect.Kinds)
	r := &Redactor{finder: f, scan: f != Finder{}, action: c.Detect.Action, keys: c.Key,
		exact: map[string]string{"@timestamp": allowed, "event.id": allowed, "tags": allowed}, counter: map[[2]string]prometheus.Counter{}}
	for _, a := range c.Detect.AllowFields {
		r.exact[a] = allowed
	}
	for i := len(c.Fields) - 1; i >= 0; i-- { // the first rule for a path wins
		fr := c.Fields[i]
		for _, p := range fr.Paths {
			r.words = append(r.words, strings.FieldsFunc(p, func(c rune) bool { return c == '.' || c == '*' }))
			if strings.Contains(p, "*") {
				r.stars = append([]rule{{glob: p, parts: strings.Split(p, "*"), action: fr.Action}}, r.stars...)
			} else {
				r.exact[p] = fr.Action
			}
		}
	}
	for _, k := range AllKinds {
		for _, a := range []string{Mask, Pseudonymize, DropField} {
			r.counter[[2]string{string(k), a}] = redactions.WithLabelValues(string(k), a)
		}
	}
	r.counter[[2]string{"unreadable", Drop}] = redactions.WithLabelValues("unreadable", Drop)
	for _, a := range []string{Pseudonymize, TruncateIP, Drop, Mask} {
		r.counter[[2]string{"field", a}] = redactions.WithLabelValues("field", a)
	}
	r.pool.New = func() any {
		s := &scratch{}
		if len(r.keys) > 0 {
			s.mac = hmac.New(sha256.New, []byte(r.keys[0]))
		}
		return s
	}
	return r, nil
}

// Pseudonyms are value's pseudonyms under every key, newest first: what
// erase searches for.
func (r *Redactor) Pseudonyms(value string) []string {
	out := make([]string, 0, len(r.keys))
	for _, k := range r.keys {
		out = append(out, pseudonym(hmac.New(sha256.New, []byte(k)), value))
	}
	return out
}

// pseudonym is the first 16 bytes of HMAC-SHA256(key, value), in hex: 128
// bits, so two values share one with odds of about n²/2¹²⁹.
func pseudonym(mac hash.Hash, value string) string {
	mac.Reset()
	mac.Write([]byte(value))
	var sum [sha256.Size]byte
	return hex.EncodeToString(mac.Sum(sum[:0])[:16])
}

// allowed marks a path never scanned (allow_fields).
const allowed = "allow"

// ruleFor is the action configured for the field at path: a rule's, or
// allowed, or "" (scan it).
func (r *Redactor) ruleFor(path string) string {
	if a, ok := r.exact[path]; ok {
		return a
	}
	for i := range r.stars {
		if globMatch(r.stars[i].parts, path) {
			return r.stars[i].action
		}
	}
	return ""
}

// globMatch: the glob's parts (split at its stars) match s, a star
// matching any run of bytes (dots too).
func globMatch(parts []string, s string) bool {
	if len(parts) == 1 {
		return parts[0] == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return strings.HasSuffix(s, parts[len(parts)-1])
}

// scratch is one redaction's working memory.
type scratch struct {
	mac     hash.Hash
	path    []byte
	str     []byte
	matches []Match
	text    []byte
	out     []byte // the document being written
}

// Redact returns doc (a JSON object, as the collector encodes it) with the
// configured fields and everything detection finds redacted, appended to
// dst, and how many redactions were made; with none, doc itself is
// returned and dst is untouched. A redacted document gets
// labels.redacted: true.
func (r *Redactor) Redact(dst, doc []byte) (out []byte, n int) {
	if r.nothingFor(doc) {
		return doc, 0
	}
	s := r.pool.Get().(*scratch)
	defer r.pool.Put(s)
	return r.redact(s, dst, doc)
}

// RedactEvent is Redact for a document made from sources (the line it was
// read from, its envelope's fields, host and path): detection is ruled out
// on the sources, about half the bytes of the document, since every string
// a filter puts in a document is a part of them or made of their parts (a
// time, a number, a key=value pair) — except the fields never scanned
// (event.id, @timestamp). No filter decodes (URLs, base64): one that does
// must hand its output to this check. Rules are looked for in the
// document itself (normalise and the nginx filter name fields the line
// does not).
func (r *Redactor) RedactEvent(dst, doc []byte, sources ...string) (out []byte, n int) {
	if !r.rulesMayApply(b2s(doc)) && r.clear(sources) {
		return doc, 0
	}
	s := r.pool.Get().(*scratch)
	defer r.pool.Put(s)
	return r.redact(s, dst, doc)
}

func (r *Redactor) clear(sources []string) bool {
	for _, src := range sources {
		if strings.IndexByte(src, '\\') >= 0 || r.scan && r.finder.Possible(src) {
			return false
		}
	}
	return true
}

// redact walks doc (see Redact).
func (r *Redactor) redact(s *scratch, dst, doc []byte) (out []byte, n int) {
	defer func() {
		// Not JSON after all (the collector encodes only JSON): nothing
		// of it is kept rather than something unredacted.
		if p := recover(); p != nil {
			r.counter[[2]string{"unreadable", Drop}].Inc()
			out, n = append(dst[:len(dst):len(dst)], unreadable...), 1
		}
	}()
	// Written into the scratch's buffer, copied to dst only when
	// something was redacted (most documents are returned as they are).
	w := walker{r: r, s: s, src: doc, out: s.out[:0], labelsAt: -1, redactedAt: -1}
	defer func() { s.out = w.out[:0] }()
	s.path = s.path[:0]
	i := pipeline.SkipSpace(doc, 0)
	if i >= len(doc) || doc[i] != '{' {
		return doc, 0
	}
	w.object(i, 0)
	if w.n == 0 {
		return doc, 0
	}
	out = w.out
	switch {
	case w.redactedAt >= 0: // labels.redacted was there: now it is true
		out = append(out[:w.redactedAt:w.redactedAt], append([]byte("true"), out[w.redactedEnd:]...)...)
	case w.labelsAt >= 0:
		ins := `"redacted":true`
		if !w.labelsEmpty {
			ins += ","
		}
		out = append(out[:w.labelsAt:w.labelsAt], append([]byte(ins), out[w.labelsAt:]...)...)
	case !w.labelsOther:
		end := len(out) - 1 // the document's closing brace
		ins := `,"labels":{"redacted":true}}`
		if w.topEmpty {
			ins = ins[1:]
		}
		out = append(out[:end], ins...)
	}
	w.out = out[:0] // kept for the next document
	return append(dst, out...), w.n
}

// nothingFor: one look at doc says nothing in it can be redacted (most
// documents): no escapes (which could spell anything), no rule whose path's
// words are all in it, nothing detection could find anywhere in it.
func (r *Redactor) nothingFor(doc []byte) bool {
	return !r.rulesMayApply(b2s(doc)) && r.clear([]string{b2s(doc)})
}

// rulesMayApply: the words of some rule's path are all in doc.
func (r *Redactor) rulesMayApply(doc string) bool {
rules:
	for _, ws := range r.words {
		for _, w := range ws {
			if !strings.Contains(doc, w) {
				continue rules
			}
		}
		return true
	}
	return false
}

// unreadable stands for a document that could not be scanned.
const unreadable = `{"message":"[a document that could not be scanned for personal data was dropped]","tags":["_privacyfailure"],"labels":{"redacted":true}}`

type walker struct {
	r   *Redactor
	s   *scratch
	src []byte
	out []byte
	n   int // redactions
	// where labels.redacted goes: after the top-level labels object's {
	labelsAt, redactedAt, redactedEnd int
	labelsEmpty, labelsOther          bool // labels is {} / labels is not an object
	topEmpty                          bool
}

func (w *walker) count(kind, action string) {
	w.n++
	w.r.counter[[2]string{kind, action}].Inc()
}

// object copies the object at src[i] ('{') to out, redacting, and returns
// the index after it.
func (w *walker) object(i, depth int) int {
	w.out = append(w.out, '{')
	i++
	first := true
	for {
		i = pipeline.SkipSpace(w.src, i)
		if w.src[i] == '}' {
			break
		}
		if w.src[i] == ',' {
			i = pipeline.SkipSpace(w.src, i+1)
		}
		ks := i
		ke, escaped := pipeline.ScanString(w.src, i)
		key := w.src[ks+1 : ke-1]
		if escaped {
			key = pipeline.AppendUnescaped(nil, key)
		}
		i = pipeline.SkipSpace(w.src, ke)
		i = pipeline.SkipSpace(w.src, i+1) // the colon
		vs := i
		pathLen := len(w.s.path)
		if pathLen > 0 {
			w.s.path = append(w.s.path, '.')
		}
		w.s.path = append(w.s.path, key...)
		path := b2s(w.s.path) // valid until the path changes: only looked up with
		act := w.r.ruleFor(path)
		if act == Drop {
			w.count("field", Drop)
			w.s.path = w.s.path[:pathLen]
			i = pipeline.ScanValue(w.src, vs)
			continue
		}
		mark := len(w.out)
		if !first {
			w.out = append(w.out, ',')
		}
		w.out = append(w.out, w.src[ks:ke]...)
		w.out = append(w.out, ':')
		keep := true
		switch {
		case act == allowed:
			i = pipeline.ScanValue(w.src, vs)
			w.out = append(w.out, w.src[vs:i]...)
		case act != "":
			i = pipeline.ScanValue(w.src, vs)
			w.field(act, w.src[vs:i])
		case depth == 0 && path == "labels":
			i = pipeline.ScanValue(w.src, vs)
			if val := w.src[vs:i]; val[0] == '{' {
				w.labelsAt = len(w.out) + 1
				w.labelsEmpty = isEmptyObject(val)
				w.object(vs, depth+1)
			} else {
				w.labelsOther = true
				w.out = append(w.out, val...)
			}
		case depth == 1 && path == "labels.redacted":
			i = pipeline.ScanValue(w.src, vs)
			w.redactedAt = len(w.out)
			w.out = append(w.out, w.src[vs:i]...)
			w.redactedEnd = len(w.out)
		default:
			i, keep = w.value(vs, depth)
		}
		if !keep { // drop_field: detection found something
			w.out = w.out[:mark]
		} else {
			first = false
		}
		w.s.path = w.s.path[:pathLen]
	}
	if depth == 0 {
		w.topEmpty = first
	}
	w.out = append(w.out, '}')
	return i + 1
}

// value copies the value at src[i], scanning its strings, and returns the
// index after it; keep false: drop it.
func (w *walker) value(i, depth int) (end int, keep bool) {
	switch w.src[i] {
	case '{':
		return w.object(i, depth+1), true
	case '[':
		return w.array(i, depth), true
	case '"':
		e, _ := pipeline.ScanString(w.src, i)
		return e, w.str(w.src[i:e])
	}
	e := pipeline.ScanValue(w.src, i)
	w.out = append(w.out, w.src[i:e]...)
	return e, true
}

// array copies the array at src[i], scanning its strings, and returns the
// index after it; an element detection says to drop is left out.
func (w *walker) array(i, depth int) int {
	w.out = append(w.out, '[')
	first := true
	for i = pipeline.SkipSpace(w.src, i+1); w.src[i] != ']'; i = pipeline.SkipSpace(w.src, i) {
		if w.src[i] == ',' {
			i = pipeline.SkipSpace(w.src, i+1)
		}
		mark := len(w.out)
		if !first {
			w.out = append(w.out, ',')
		}
		var keep bool
		if i, keep = w.value(i, depth); keep {
			first = false
		} else {
			w.out = w.out[:mark]
		}
	}
	w.out = append(w.out, ']')
	return i + 1
}

// text is a string token's content, unescaped.
func (w *walker) text(tok []byte) string {
	c := tok[1 : len(tok)-1]
	for _, b := range c {
		if b == '\\' {
			w.s.str = pipeline.AppendUnescaped(w.s.str[:0], c)
			return b2s(w.s.str)
		}
	}
	return b2s(c)
}

// str copies a string, with what detection finds in it redacted; false:
// drop its field.
func (w *walker) str(tok []byte) bool {
	if !w.r.scan || len(tok) < 5 {
		w.out = append(w.out, tok...)
		return true
	}
	t, n := w.r.redactText(w.s, w.text(tok), w.r.action)
	w.n += n
	switch {
	case n == 0:
		w.out = append(w.out, tok...)
	case w.r.action == DropField:
		return false
	default:
		w.out = pipeline.AppendJSONString(w.out, b2s(t))
	}
	return true
}

// redactText returns s with what detection finds masked or pseudonymised
// (in sc.text), and how many it found (0: t is not set); with drop_field
// the matches are counted and t is s masked.
func (r *Redactor) redactText(sc *scratch, s, action string) (t []byte, n int) {
	sc.matches = r.finder.Append(sc.matches[:0], s)
	if len(sc.matches) == 0 {
		return nil, 0
	}
	for _, m := range sc.matches {
		r.counter[[2]string{string(m.Kind), action}].Inc()
	}
	t = sc.text[:0]
	at := 0
	for _, m := range sc.matches {
		t = append(t, s[at:m.Start]...)
		if action == Pseudonymize {
			t = append(t, pseudonym(sc.mac, s[m.Start:m.End])...)
		} else if action == DropField {
			t = append(t, "[redacted]"...)
		} else {
			t = append(append(append(t, '['), m.Kind...), ']')
		}
		at = m.End
	}
	t = append(t, s[at:]...)
	sc.text = t
	return t, len(sc.matches)
}

// RedactLine redacts a line as the shipper read it: a JSON object as
// Redact does; any other text by detection, masked or pseudonymised
// (drop_field masks: a text line is one field). It returns the line
// itself when nothing was found.
func (r *Redactor) RedactLine(dst, line []byte) ([]byte, int) {
	if r.nothingFor(line) {
		return line, 0 // most lines: one look, no validation
	}
	if i := pipeline.SkipSpace(line, 0); i < len(line) && line[i] == '{' && gjson.ValidBytes(line) {
		return r.Redact(dst, line)
	}
	if !r.scan {
		return line, 0
	}
	sc := r.pool.Get().(*scratch)
	defer r.pool.Put(sc)
	a := r.action
	if a == DropField {
		a = Mask
	}
	t, n := r.redactText(sc, b2s(line), a)
	if n == 0 {
		return line, 0
	}
	return append(dst, t...), n
}

func (w *walker) pseudonym(v string) string { return pseudonym(w.s.mac, v) }

// field applies a configured action to a field's value: to a string or a
// number, or to every string (and number) inside an object or array.
func (w *walker) field(act string, val []byte) {
	switch val[0] {
	case '{', '[':
		open, end := val[0], byte('}')
		if open == '[' {
			end = ']'
		}
		w.out = append(w.out, open)
		first := true
		for i := pipeline.SkipSpace(val, 1); val[i] != end; i = pipeline.SkipSpace(val, i) {
			if val[i] == ',' {
				i = pipeline.SkipSpace(val, i+1)
			}
			if !first {
				w.out = append(w.out, ',')
			}
			first = false
			if open == '{' {
				ke, _ := pipeline.ScanString(val, i)
				w.out = append(append(w.out, val[i:ke]...), ':')
				i = pipeline.SkipSpace(val, pipeline.SkipSpace(val, ke)+1)
			}
			e := pipeline.ScanValue(val, i)
			w.field(act, val[i:e])
			i = e
		}
		w.out = append(w.out, end)
		return
	case 't', 'f', 'n':
		w.out = append(w.out, val...)
		return
	}
	var v string
	if val[0] == '"' {
		v = w.text(val)
	} else {
		v = b2s(val) // a number, pseudonymised as its text
	}
	switch act {
	case Pseudonymize:
		w.out = pipeline.AppendJSONString(w.out, w.pseudonym(v))
	case Mask:
		w.out = append(w.out, `"[redacted]"`...)
	case TruncateIP:
		t, ok := truncateIPs(w.s.text[:0], v)
		if !ok {
			w.out = append(w.out, val...)
			return
		}
		w.s.text = t
		w.out = pipeline.AppendJSONString(w.out, b2s(t))
	}
	w.count("field", act)
}

// truncateIPs keeps the addresses in v (one, or a list such as
// X-Forwarded-For's) to their /24 or /48 network; ok false: none in it.
func truncateIPs(dst []byte, v string) ([]byte, bool) {
	if ip, err := netip.ParseAddr(v); err == nil {
		return append(dst, truncated(ip)...), true
	}
	ms := Find(v, []Kind{IPv4, IPv6})
	if len(ms) == 0 {
		return dst, false
	}
	at := 0
	for _, m := range ms {
		dst = append(dst, v[at:m.Start]...)
		ip, _ := netip.ParseAddr(v[m.Start:m.End])
		dst = append(dst, truncated(ip)...)
		at = m.End
	}
	return append(dst, v[at:]...), true
}

func truncated(ip netip.Addr) string {
	bits := 24
	if ip.Is6() && !ip.Is4In6() {
		bits = 48
	}
	p, _ := ip.Unmap().Prefix(bits)
	return p.Addr().String()
}

func isEmptyObject(v []byte) bool {
	return pipeline.SkipSpace(v, 1) < len(v) && v[pipeline.SkipSpace(v, 1)] == '}'
}
