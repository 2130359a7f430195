package pipeline

import (
	"bytes"

	"github.com/tidwall/gjson"
)

// Member is one member of a JSON object: its key (unescaped) and the raw
// bytes of its value.
type Member struct {
	Key    string
	RawKey []byte // the key as written, with its quotes
	Val    []byte // the raw JSON value
}

// members appends the top-level members of the JSON object obj to dst. obj
// must be valid JSON (the json filter checks that); on anything else it
// stops. It only finds the boundaries of values, it does not decode them,
// which is what makes reading a document by its top-level keys cheap.
func members(dst []Member, obj []byte) []Member {
	i := skipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return dst
	}
	i++
	for {
		i = skipSpace(obj, i)
		if i >= len(obj) || obj[i] != '"' {
			return dst
		}
		keyStart := i
		kEnd, escaped := scanString(obj, i)
		if kEnd < 0 {
			return dst
		}
		var key string
		if escaped {
			key = gjson.Parse(string(obj[i:kEnd])).Str
		} else {
			key = b2s(obj[i+1 : kEnd-1])
		}
		i = skipSpace(obj, kEnd)
		if i >= len(obj) || obj[i] != ':' {
			return dst
		}
		i = skipSpace(obj, i+1)
		vEnd := scanValue(obj, i)
		if vEnd < 0 {
			return dst
		}
		dst = append(dst, Member{Key: key, RawKey: obj[keyStart:kEnd], Val: obj[i:vEnd]})
		i = skipSpace(obj, vEnd)
		if i >= len(obj) || obj[i] != ',' {
			return dst
		}
		i++
	}
}

// eachMember calls fn with the raw value of each member of the JSON object
// obj named key (as members would list it), in order, until fn returns
// true; it scans no further than that.
func eachMember(obj []byte, key string, fn func(v []byte) bool) {
	i := skipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return
	}
	i++
	for {
		i = skipSpace(obj, i)
		if i >= len(obj) || obj[i] != '"' {
			return
		}
		kEnd, escaped := scanString(obj, i)
		if kEnd < 0 {
			return
		}
		var match bool
		if escaped {
			match = gjson.Parse(b2s(obj[i:kEnd])).Str == key
		} else {
			match = b2s(obj[i+1:kEnd-1]) == key
		}
		i = skipSpace(obj, kEnd)
		if i >= len(obj) || obj[i] != ':' {
			return
		}
		i = skipSpace(obj, i+1)
		vEnd := scanValue(obj, i)
		if vEnd < 0 {
			return
		}
		if match && fn(obj[i:vEnd]) {
			return
		}
		i = skipSpace(obj, vEnd)
		if i >= len(obj) || obj[i] != ',' {
			return
		}
		i++
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// scanString returns the index after the string starting at b[i] == '"',
// and whether it holds escapes.
func scanString(b []byte, i int) (end int, escaped bool) {
	// Most strings have no escape: find the closing quote with IndexByte
	// (vectorised), and look byte by byte only where a backslash is.
	if q := bytes.IndexByte(b[i+1:], '"'); q >= 0 && bytes.IndexByte(b[i+1:i+1+q], '\\') < 0 {
		return i + 2 + q, false
	}
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			escaped = true
			j++
		case '"':
			return j + 1, escaped
		}
	}
	return -1, escaped
}

// scanValue returns the index after the value starting at b[i].
func scanValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		end, _ := scanString(b, i)
		return end
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end, _ := scanString(b, j)
				if end < 0 {
					return -1
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	default:
		j := i
		for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\t' && b[j] != '\n' && b[j] != '\r' {
			j++
		}
		if j == i {
			return -1
		}
		return j
	}
}

// Value parses the member's value (without copying it).
func (m *Member) Value() gjson.Result { return parseValue(m.Val) }

// Members returns the top-level members of a JSON object.
func Members(obj []byte) []Member { return members(nil, obj) }

// SkipSpace, ScanString and ScanValue walk JSON text by hand, for a
// package that rewrites documents the collector encoded (filters/privacy):
// each returns the index after what it read (ScanString also whether the
// string holds escapes), -1 when the text ends first.
func SkipSpace(b []byte, i int) int { return skipSpace(b, i) }

// ScanString: see SkipSpace.
func ScanString(b []byte, i int) (end int, escaped bool) { return scanString(b, i) }

// ScanValue: see SkipSpace.
func ScanValue(b []byte, i int) int { return scanValue(b, i) }
