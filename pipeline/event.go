// Package pipeline holds what every stage of logweave shares: the event (a JSON
// document kept as bytes, with edits spliced in when it is encoded), the
// record that travels through the buffer to an output, configuration loading,
// and Logstash-style index patterns.
package pipeline

import (
	"encoding/binary"
	"math/bits"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/tidwall/gjson"
)

// Event is one log event on its way through the collector's filters.
//
// Doc holds the parsed JSON object as it arrived (nil when the line was not a
// JSON object). Filters never rewrite Doc: they record edits with Set and
// Delete, and Encode splices them in with one pass over the document. Reads
// through Get see the edits first, so a filter sees what earlier filters did.
type Event struct {
	ID     string    // deterministic id derived from the event's origin
	Line   []byte    // the raw line as read
	Doc    []byte    // the JSON object parsed from Line, or nil
	ReadAt time.Time // when the shipper (or the collector) read it
	Time   time.Time // the event's own time (@timestamp), set by normalisation
	Index  string    // destination index, set after normalisation
	Key    string    // partitioning key (the request id), may be empty
	Tags   []string

	edits []edit
	top   []Member // top-level members of Doc, found on first Get
	topOK bool
	arena []byte // backing store for values made by Set*
	stack []edit // the encoder's scratch, kept for reuse
}

type edit struct {
	path  string // dotted path, e.g. "log.level"
	value []byte // raw JSON; nil means delete
}

// Reset empties e for reuse, keeping its allocations.
func (e *Event) Reset() {
	*e = Event{Tags: e.Tags[:0], edits: e.edits[:0], top: e.top[:0], arena: e.arena[:0], stack: e.stack[:0]}
}

// alloc returns n bytes of the event's arena. Slices handed out stay valid
// until Reset: a full arena is replaced, never written over.
func (e *Event) alloc(n int) []byte {
	if cap(e.arena)-len(e.arena) < n {
		e.arena = make([]byte, 0, max(2*cap(e.arena), n, 512))
	}
	start := len(e.arena)
	e.arena = e.arena[:start+n]
	return e.arena[start : start+n : start+n]
}

// appendArena copies b into the arena.
func (e *Event) appendArena(b []byte) []byte {
	out := e.alloc(len(b))
	copy(out, b)
	return out
}

// SetDoc sets the parsed document (nil when the line was not a JSON object).
func (e *Event) SetDoc(doc []byte) {
	e.Doc, e.top, e.topOK = doc, e.top[:0], false
}

// Encoded makes doc, an encoding of the event with its edits and tags in
// it (and then changed: redacted), the event's document: reads see doc
// alone from here on, not the edits it holds.
func (e *Event) Encoded(doc []byte) {
	e.Doc, e.top, e.topOK, e.edits, e.Tags = doc, e.top[:0], false, e.edits[:0], e.Tags[:0]
}

// Set records that the field at the dotted path takes the raw JSON value.
// A later Set of the same path wins (Get and Encode look for the last one);
// the field keeps the place of the first.
func (e *Event) Set(path string, raw []byte) {
	e.edits = append(e.edits, edit{path: path, value: raw})
}

// SetString sets path to the JSON string s.
func (e *Event) SetString(path, s string) {
	e.Set(path, e.JSONString(s))
}

// Bytes copies b into the event's arena (valid until Reset).
func (e *Event) Bytes(b []byte) []byte { return e.appendArena(b) }

// JSONString returns s encoded as a JSON string in the event's arena, for
// use as a value in Set (valid until Reset).
func (e *Event) JSONString(s string) []byte {
	if cap(e.arena)-len(e.arena) < len(s)+2 {
		e.arena = make([]byte, 0, max(2*cap(e.arena), len(s)+2, 512))
	}
	// Appending in place: should escapes outgrow the arena, append moves
	// it, and what was handed out stays valid in the old one.
	start := len(e.arena)
	e.arena = AppendJSONString(e.arena, s)
	return e.arena[start:len(e.arena):len(e.arena)]
}

// SetInt sets path to the JSON number n.
func (e *Event) SetInt(path string, n int64) {
	var buf [24]byte
	e.Set(path, e.appendArena(strconv.AppendInt(buf[:0], n, 10)))
}

// Delete removes the field at the dotted path from the encoded document.
func (e *Event) Delete(path string) {
	e.Set(path, nil)
}

// Rename moves the value at from to to, keeping its raw JSON.
func (e *Event) Rename(from, to string) bool {
	r := e.Get(from)
	if !r.Exists() {
		return false
	}
	// r.Raw points into the document or an edit, both unchanging.
	e.Set(to, unsafe.Slice(unsafe.StringData(r.Raw), len(r.Raw)))
	e.Delete(from)
	return true
}

// Get reads a field by dotted path: edits first, then the document, where a
// literal dotted key ("log.level": ...) is found as well as nested objects.
func (e *Event) Get(path string) gjson.Result {
	for i := len(e.edits) - 1; i >= 0; i-- {
		if e.edits[i].path == path {
			if e.edits[i].value == nil {
				return gjson.Result{}
			}
			return parseValue(e.edits[i].value)
		}
	}
	if e.Doc == nil {
		return gjson.Result{}
	}
	if !e.topOK {
		e.top = members(e.top[:0], e.Doc)
		e.topOK = true
	}
	head, rest, nested := strings.Cut(path, ".")
	for i := range e.top {
		m := &e.top[i]
		if m.Key == path {
			return parseValue(m.Val)
		}
		if nested && m.Key == head && len(m.Val) > 0 && m.Val[0] == '{' {
			if seg, _, _ := strings.Cut(rest, "."); plainPath(rest) && !mayHoldKey(b2s(m.Val), seg) {
				continue // most absent paths (http.response.status_code in an app's http) end here
			}
			r := getPath(m.Val, rest)
			if !r.Exists() && strings.IndexByte(rest, '.') >= 0 && mayHoldKey(b2s(m.Val), rest) {
				r = gjson.GetBytes(m.Val, escapeAll(rest)) // a literal dotted key: {"http":{"request.id":…}}
			}
			if r.Exists() {
				return r
			}
		}
	}
	return gjson.Result{}
}

// AddTag appends tag unless it is already present.
func (e *Event) AddTag(tag string) {
	for _, t := range e.Tags {
		if t == tag {
			return
		}
	}
	e.Tags = append(e.Tags, tag)
}

// RemoveTag takes back a tag (a later filter understood the event).
func (e *Event) RemoveTag(tag string) {
	for i, t := range e.Tags {
		if t == tag {
			e.Tags = append(e.Tags[:i], e.Tags[i+1:]...)
			return
		}
	}
}

// HasTag reports whether tag was added.
func (e *Event) HasTag(tag string) bool {
	for _, t := range e.Tags {
		if t == tag {
			return true
		}
	}
	return false
}

// escapePath escapes gjson's special characters in each path segment but
// keeps the dots as separators.
func escapePath(path string) string {
	if !hasPathSyntax(path) {
		return path
	}
	var b strings.Builder
	for i := 0; i < len(path); i++ {
		c := path[i]
		if strings.IndexByte(`*?|#@\!=<>%`, c) >= 0 {
			b.WriteByte('\\')
		}
		b.WriteByte(c)
	}
	return b.String()
}

// pathSyntax marks the bytes gjson's path syntax gives a meaning to.
var pathSyntax = func() (set [256]bool) {
	for _, c := range []byte(`*?|#@\!=<>%`) {
		set[c] = true
	}
	return set
}()

func hasPathSyntax(path string) bool {
	for i := 0; i < len(path); i++ {
		if pathSyntax[path[i]] {
			return true
		}
	}
	return false
}

// plainPath reports whether path is keys joined by single dots, none
// empty, with nothing gjson's path syntax reads otherwise.
func plainPath(path string) bool {
	if path == "" || path[0] == '.' || path[len(path)-1] == '.' {
		return false
	}
	for i := 0; i < len(path); i++ {
		c := path[i]
		if pathSyntax[c] || c == '[' || c == '{' || c == '.' && path[i-1] == '.' {
			return false
		}
	}
	return true
}

// getPath is gjson.GetBytes(obj, escapePath(path)) for a dotted path of
// keys, without gjson's work of parsing the path and each object it walks
// through: members are found by scanning, the value parsed once. A path
// through anything but objects (gjson's array indexes) is left to gjson.
func getPath(obj []byte, path string) gjson.Result {
	if !plainPath(path) {
		return gjson.GetBytes(obj, escapePath(path)) // gjson's own readings of these
	}
	seg, rest, more := strings.Cut(path, ".")
	var r gjson.Result
	// As gjson: the first member of the name that holds the rest, depth
	// first.
	eachMember(obj, seg, func(v []byte) bool {
		switch {
		case !more:
			r = parseValue(v)
			return true
		case v[0] == '{':
			r = getPath(v, rest)
		case v[0] == '[':
			r = gjson.GetBytes(v, escapePath(rest))
		}
		return r.Exists()
	})
	return r
}

// mayHoldKey reports whether the JSON text obj may hold the key (its text,
// or escapes that could spell it): most lookups of a dotted key end here.
func mayHoldKey(obj, key string) bool {
	return strings.Contains(obj, key) || strings.IndexByte(obj, '\\') >= 0
}

// escapeAll escapes the dots too, so the path names one literal key.
func escapeAll(path string) string {
	p := escapePath(path)
	return strings.ReplaceAll(p, ".", `\.`)
}

// Encode appends the event's final JSON document to dst: the parsed document
// with every edit applied, followed by the tags. It never decodes the document
// into maps; it walks the members of the objects an edit touches.
func (e *Event) Encode(dst []byte) []byte {
	edits := e.edits
	if len(e.Tags) > 0 {
		edits = append(edits[:len(edits):len(edits)], edit{path: "tags", value: e.tagsJSON()})
	}
	enc := encoder{dst: dst, stack: e.stack[:0]}
	if !e.topOK {
		e.top = members(e.top[:0], e.Doc)
		e.topOK = true
	}
	enc.object(e.top, edits)
	e.stack = enc.stack[:0]
	return enc.dst
}

func (e *Event) tagsJSON() []byte {
	// Tags already in the document are kept in front of ours.
	b := []byte{'['}
	n := 0
	if prev := e.Get("tags"); prev.IsArray() {
		for _, t := range prev.Array() {
			if n > 0 {
				b = append(b, ',')
			}
			b = append(b, t.Raw...)
			n++
		}
	}
	for _, t := range e.Tags {
		if n > 0 {
			b = append(b, ',')
		}
		b = AppendJSONString(b, t)
		n++
	}
	return append(b, ']')
}

type encoder struct {
	dst   []byte
	stack []edit // sub-edits of the objects being written, used as a stack
}

// object writes an object made of members ms (none for a new object) with
// edits whose paths are relative to it.
//
// Edits are indexed by a 6-bit hash of their first path segment (bitsets of
// edit numbers per hash), so a member finds its edits in a few steps, and a
// member whose first byte starts no edit's path is copied without a look:
// runs of such members are copied from the document as one span.
func (enc *encoder) object(ms []Member, edits []edit) {
	enc.dst = append(enc.dst, '{')
	first := true
	words := (len(edits) + 63) / 64
	var headBuf [16]string
	var byHashBuf [64]uint64
	var doneBuf [1]uint64
	var heads []string
	byHash, done := byHashBuf[:], doneBuf[:]
	if len(edits) <= len(headBuf) {
		heads = headBuf[:len(edits)]
	} else {
		heads = make([]string, len(edits))
	}
	if words > 1 {
		byHash, done = make([]uint64, 64*words), make([]uint64, words)
	}
	var firsts [4]uint64 // the first bytes of the heads, as a 256-bit set
	for i := range edits {
		p := edits[i].path
		if j := strings.IndexByte(p, '.'); j >= 0 {
			p = p[:j]
		}
		heads[i] = p
		byHash[headHash(p)*words+i/64] |= 1 << (i % 64)
		c := firstByte(p)
		firsts[c/64] |= 1 << (c % 64)
	}
	g := group{edits: edits, heads: heads, byHash: byHash, done: done, words: words}
	var run []byte // untouched members not yet written, as one span of the document
	for _, m := range ms {
		if c := firstByte(m.Key); firsts[c/64]&(1<<(c%64)) == 0 {
			run = extend(run, m)
			continue
		}
		dotted := strings.IndexByte(m.Key, '.') >= 0
		mark := len(enc.stack)
		exact := enc.collect(&g, m.Key, dotted)
		if exact < 0 && len(enc.stack) == mark {
			run = extend(run, m)
			continue
		}
		first = enc.span(first, run)
		run = nil
		base := m.Val
		if exact >= 0 {
			base = edits[exact].value
		}
		first = enc.write(first, m.Key, m.RawKey, base, enc.stack[mark:len(enc.stack):len(enc.stack)])
		enc.stack = enc.stack[:mark]
	}
	first = enc.span(first, run)
	// Edits of keys the object does not have, in the order they were made.
	for i := range edits {
		if done[i/64]&(1<<(i%64)) != 0 {
			continue
		}
		mark := len(enc.stack)
		exact := enc.collect(&g, heads[i], false)
		var base []byte
		if exact >= 0 {
			base = edits[exact].value
		}
		first = enc.write(first, heads[i], nil, base, enc.stack[mark:len(enc.stack):len(enc.stack)])
		enc.stack = enc.stack[:mark]
	}
	enc.dst = append(enc.dst, '}')
}

// extend grows run, a span of the document, to the end of member m (which
// follows it in the same document); a nil run starts at m's key.
func extend(run []byte, m Member) []byte {
	start := unsafe.SliceData(m.RawKey)
	if run != nil {
		start = unsafe.SliceData(run)
	}
	end := unsafe.Add(unsafe.Pointer(unsafe.SliceData(m.Val)), len(m.Val))
	return unsafe.Slice(start, uintptr(end)-uintptr(unsafe.Pointer(start)))
}

// span writes a run of untouched members as they stood in the document.
func (enc *encoder) span(first bool, run []byte) bool {
	if run == nil {
		return first
	}
	if !first {
		enc.dst = append(enc.dst, ',')
	}
	enc.dst = append(enc.dst, run...)
	return false
}

func firstByte(k string) byte {
	if k == "" {
		return 0
	}
	return k[0]
}

// newObject writes an object made only of edits (at most 64): the common
// case of fields added under a new key ("log": {"level", "file.path"}).
// Same result as object(nil, edits), without its bookkeeping.
func (enc *encoder) newObject(edits []edit) {
	enc.dst = append(enc.dst, '{')
	first := true
	var done uint64
	for i := range edits {
		if done&(1<<i) != 0 {
			continue
		}
		done |= 1 << i
		p := edits[i].path
		j := strings.IndexByte(p, '.')
		if j < 0 {
			// A plain key; a later edit of the same key wins, and edits
			// below it (p.x) make it an object.
			exact := i
			mark := len(enc.stack)
			for k := i + 1; k < len(edits); k++ {
				if done&(1<<k) != 0 {
					continue
				}
				q := edits[k].path
				if q == p {
					exact = k
					done |= 1 << k
				} else if len(q) > len(p) && q[len(p)] == '.' && q[:len(p)] == p {
					enc.stack = append(enc.stack, edit{path: q[len(p)+1:], value: edits[k].value})
					done |= 1 << k
				}
			}
			first = enc.write(first, p, nil, edits[exact].value, enc.stack[mark:len(enc.stack):len(enc.stack)])
			enc.stack = enc.stack[:mark]
			continue
		}
		head := p[:j]
		mark := len(enc.stack)
		enc.stack = append(enc.stack, edit{path: p[j+1:], value: edits[i].value})
		exact := -1
		for k := i + 1; k < len(edits); k++ {
			if done&(1<<k) != 0 {
				continue
			}
			q := edits[k].path
			if q == head {
				exact = k
				done |= 1 << k
			} else if len(q) > len(head) && q[len(head)] == '.' && q[:len(head)] == head {
				enc.stack = append(enc.stack, edit{path: q[len(head)+1:], value: edits[k].value})
				done |= 1 << k
			}
		}
		var base []byte
		if exact >= 0 {
			base = edits[exact].value
		}
		first = enc.write(first, head, nil, base, enc.stack[mark:len(enc.stack):len(enc.stack)])
		enc.stack = enc.stack[:mark]
	}
	enc.dst = append(enc.dst, '}')
}

// group is the edits of one object with their first path segments, indexed
// by the segments' hashes: byHash[h*words+w] is word w of the set of edits
// whose first segment hashes to h; done is the set already written.
type group struct {
	edits  []edit
	heads  []string
	byHash []uint64
	done   []uint64
	words  int
}

func headHash(k string) int {
	if k == "" {
		return 0
	}
	return int((uint(len(k))*7 + uint(k[0])) & 63)
}

// collect finds the edit of exactly key (-1 if none; the last one wins) and
// pushes the edits below it on enc.stack, in the order they were made,
// marking them done; the caller pops them when it has written the key.
// dotted says key is a literal dotted key ("log.file") that edits
// ("log.file.path") may reach into.
func (enc *encoder) collect(g *group, key string, dotted bool) (exact int) {
	exact = -1
	if dotted {
		// A dotted key is no edit's first segment; look at every edit.
		for i := range g.edits {
			if g.done[i/64]&(1<<(i%64)) != 0 {
				continue
			}
			ed := &g.edits[i]
			switch {
			case ed.path == key:
				exact = i
			case len(ed.path) > len(key) && ed.path[len(key)] == '.' && ed.path[:len(key)] == key:
				enc.stack = append(enc.stack, edit{path: ed.path[len(key)+1:], value: ed.value})
			default:
				continue
			}
			g.done[i/64] |= 1 << (i % 64)
		}
		return exact
	}
	h := headHash(key) * g.words
	for w := 0; w < g.words; w++ {
		for cand := g.byHash[h+w] &^ g.done[w]; cand != 0; cand &= cand - 1 {
			i := w*64 + bits.TrailingZeros64(cand)
			if g.heads[i] != key {
				continue
			}
			ed := &g.edits[i]
			if len(ed.path) == len(key) {
				exact = i
			} else {
				enc.stack = append(enc.stack, edit{path: ed.path[len(key)+1:], value: ed.value})
			}
			g.done[w] |= 1 << (i % 64)
		}
	}
	return exact
}

// key writes a member's key: raw (as it stood in the source, quotes
// included) when given, else key escaped.
func (enc *encoder) key(first bool, key string, raw []byte) {
	if !first {
		enc.dst = append(enc.dst, ',')
	}
	switch {
	case raw != nil:
		enc.dst = append(enc.dst, raw...)
	case plainKey(key):
		enc.dst = append(enc.dst, '"')
		enc.dst = append(enc.dst, key...)
		enc.dst = append(enc.dst, '"')
	default:
		enc.dst = AppendJSONString(enc.dst, key)
	}
	enc.dst = append(enc.dst, ':')
}

// write emits key with its base value (nil: absent or deleted) and the
// edits below it. It returns the new "first" state.
func (enc *encoder) write(first bool, key string, raw, base []byte, sub []edit) bool {
	switch {
	case len(sub) == 0 || allDeletes(sub) && !isObject(base):
		if base == nil {
			return first
		}
		enc.key(first, key, raw)
		enc.dst = append(enc.dst, base...)
	case base == nil && len(sub) <= 64:
		enc.key(first, key, raw)
		enc.newObject(sub)
	case base == nil:
		enc.key(first, key, raw)
		enc.object(nil, sub)
	case isObject(base):
		enc.key(first, key, raw)
		var buf [16]Member
		enc.object(members(buf[:0], base), sub)
	default:
		// A scalar is in the way of an object we must write: keep it
		// beside, under <key>_value.
		enc.key(first, key+"_value", nil)
		enc.dst = append(enc.dst, base...)
		enc.key(false, key, raw)
		enc.object(nil, sub)
	}
	return false
}

func isObject(raw []byte) bool {
	for _, c := range raw {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '{':
			return true
		default:
			return false
		}
	}
	return false
}

func allDeletes(edits []edit) bool {
	for _, e := range edits {
		if e.value != nil {
			return false
		}
	}
	return true
}

// jsonSafe marks the bytes that may stand in a JSON string unescaped.
var jsonSafe = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// AppendJSONString appends s as a JSON string literal, escaping what JSON
// requires and replacing invalid UTF-8 with U+FFFD (per byte, as
// encoding/json does).
func AppendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		// Eight bytes at a time to the next byte that needs attention.
		for i+8 <= len(s) {
			if m := escapeMask8(s[i:]); m != 0 {
				i += bits.TrailingZeros64(m) / 8
				break
			}
			i += 8
		}
		if i >= len(s) {
			break
		}
		c := s[i]
		if jsonSafe[c] {
			i++
			continue
		}
		if c < 0x80 {
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, "\ufffd"...)
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// TopLevel returns the document's top-level members (as parsed, without
// edits). Filters that look for several fields use it for one pass instead
// of one Get each. The slice is valid until Reset.
func (e *Event) TopLevel() []Member {
	if !e.topOK {
		e.top = members(e.top[:0], e.Doc)
		e.topOK = true
	}
	return e.top
}

// Edited reports whether any edit was recorded.
func (e *Event) Edited() bool { return len(e.edits) > 0 }

// escapeMask8 flags (with its high bit) each of the first eight bytes of s
// that is below 0x20, a quote, a backslash or not ASCII (SWAR: one word at a
// time). Only the lowest flag is exact: a borrow may flag bytes above it.
func escapeMask8(s string) uint64 {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	x := binary.LittleEndian.Uint64(unsafe.Slice(unsafe.StringData(s), 8))
	q := x ^ (lo * '"')
	b := x ^ (lo * '\\')
	return (x | ((x - lo*0x20) &^ x) | ((q - lo) &^ q) | ((b - lo) &^ b)) & hi
}

// plainKey reports whether a (short) key needs no escaping.
func plainKey(k string) bool {
	for i := 0; i < len(k); i++ {
		if !jsonSafe[k[i]] {
			return false
		}
	}
	return true
}

// b2s views b as a string without copying; b must not change while in use.
func b2s(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}
