package pipeline

import (
	"bytes"
	"encoding/binary"
	"math/bits"

	"github.com/tidwall/gjson"
)

// ParseObject validates b as one JSON object (whitespace around it allowed)
// and appends its top-level members to dst, in one pass. It accepts exactly
// what encoding/json.Valid accepts of an object (like it, it does not check
// UTF-8 inside strings). ok is false when b is anything else; dst may then
// hold some members and must be discarded.
//
// It replaces a validation pass followed by a members pass: strings, which
// are most of a log line, are skipped eight bytes at a time.
func ParseObject(dst []Member, b []byte) (_ []Member, ok bool) {
	const (
		objFirst = iota // after '{': a key or '}'
		objKey          // after ',' in an object: a key
		arrFirst        // after '[': a value or ']'
		value           // a value
		after           // after a value: ',' or the container's end
	)
	var kindsBuf [32]byte
	kinds := kindsBuf[:0] // the open containers, '{' or '['
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return dst, false
	}
	kinds = append(kinds, '{')
	i++
	state := objFirst
	var keyStart, keyEnd, valStart int
	var keyEscaped bool
	for {
		i = skipSpace(b, i)
		if i >= len(b) {
			return dst, false
		}
		c := b[i]
		switch state {
		case objFirst, objKey:
			if c == '}' && state == objFirst {
				break // closed below
			}
			if c != '"' {
				return dst, false
			}
			end, escaped := validString(b, i)
			if end < 0 {
				return dst, false
			}
			if len(kinds) == 1 {
				keyStart, keyEnd, keyEscaped = i, end, escaped
			}
			i = skipSpace(b, end)
			if i >= len(b) || b[i] != ':' {
				return dst, false
			}
			i++
			state = value
			continue
		case arrFirst:
			if c == ']' {
				break
			}
			state = value
			continue
		case value:
			if len(kinds) == 1 {
				valStart = i
			}
			switch c {
			case '{':
				kinds = append(kinds, '{')
				state = objFirst
				i++
				continue
			case '[':
				kinds = append(kinds, '[')
				state = arrFirst
				i++
				continue
			case '"':
				end, _ := validString(b, i)
				if end < 0 {
					return dst, false
				}
				i = end
			case 't':
				if !hasPrefix(b[i:], "true") {
					return dst, false
				}
				i += 4
			case 'f':
				if !hasPrefix(b[i:], "false") {
					return dst, false
				}
				i += 5
			case 'n':
				if !hasPrefix(b[i:], "null") {
					return dst, false
				}
				i += 4
			default:
				if i = validNumber(b, i); i < 0 {
					return dst, false
				}
			}
			if len(kinds) == 1 {
				dst = appendMember(dst, b, keyStart, keyEnd, keyEscaped, valStart, i)
			}
			state = after
			continue
		case after:
			open := kinds[len(kinds)-1]
			if c == ',' {
				i++
				if open == '{' {
					state = objKey
				} else {
					state = value
				}
				continue
			}
			if !(c == '}' && open == '{' || c == ']' && open == '[') {
				return dst, false
			}
		}
		// b[i] closes the innermost container.
		kinds = kinds[:len(kinds)-1]
		i++
		switch len(kinds) {
		case 0:
			return dst, skipSpace(b, i) == len(b)
		case 1:
			dst = appendMember(dst, b, keyStart, keyEnd, keyEscaped, valStart, i)
		}
		state = after
	}
}

func appendMember(dst []Member, b []byte, keyStart, keyEnd int, escaped bool, valStart, valEnd int) []Member {
	var key string
	if escaped {
		key = gjson.Parse(string(b[keyStart:keyEnd])).Str
	} else {
		key = b2s(b[keyStart+1 : keyEnd-1])
	}
	return append(dst, Member{Key: key, RawKey: b[keyStart:keyEnd], Val: b[valStart:valEnd]})
}

func hasPrefix(b []byte, lit string) bool {
	return len(b) >= len(lit) && string(b[:len(lit)]) == lit
}

// validString checks the JSON string starting at b[i] == '"' and returns the
// index after it (-1 when it is not valid) and whether it holds escapes.
func validString(b []byte, i int) (end int, escaped bool) {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	i++
	for {
		// Eight bytes at a time to the next quote, backslash or control
		// character (the lowest flagged byte is always a real one).
		for i+8 <= len(b) {
			x := binary.LittleEndian.Uint64(b[i:])
			q := x ^ (lo * '"')
			s := x ^ (lo * '\\')
			if m := (((x - lo*0x20) &^ x) | ((q - lo) &^ q) | ((s - lo) &^ s)) & hi; m != 0 {
				i += bits.TrailingZeros64(m) / 8
				break
			}
			i += 8
		}
		if i >= len(b) {
			return -1, escaped
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1, escaped
		case c < 0x20:
			return -1, escaped
		case c == '\\':
			escaped = true
			if i+1 >= len(b) {
				return -1, escaped
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) || !isHex(b[i+5]) {
					return -1, escaped
				}
				i += 6
			default:
				return -1, escaped
			}
		default:
			i++
		}
	}
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// validNumber checks the JSON number starting at b[i] and returns the index
// after it, or -1.
func validNumber(b []byte, i int) int {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = digits(b, i+1)
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		j := digits(b, i+1)
		if j == i+1 {
			return -1
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(b, i)
		if j == i {
			return -1
		}
		i = j
	}
	return i
}

func digits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

// SetObject sets the document to b when b is a valid JSON object, finding its
// top-level members in the same pass; it reports whether it did. Otherwise
// the document is nil.
//
// A document spread over lines (pretty-printed JSON in a GELF message) is
// made one line, as the bulk API and NDJSON files need: in valid JSON a line
// break can only be whitespace between tokens, so it becomes a space.
func (e *Event) SetObject(b []byte) bool {
	top, ok := ParseObject(e.top[:0], b)
	if !ok {
		e.Doc, e.top, e.topOK = nil, top[:0], false
		return false
	}
	if bytes.IndexByte(b, '\n') >= 0 {
		b = e.Bytes(b)
		for i, c := range b {
			if c == '\n' {
				b[i] = ' '
			}
		}
		top, _ = ParseObject(top[:0], b)
	}
	e.Doc, e.top, e.topOK = b, top, true
	return true
}
