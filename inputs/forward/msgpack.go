package forward

import (
	"bufio"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/logweave/logweave/pipeline"
)

// A decoder reads MessagePack values from a stream and writes them as
// JSON, by hand rather than through a MessagePack library: a message of
// the Forward protocol is read straight into the JSON line the filters
// take (no map[string]any per record), and every length a sender declares
// is checked against what is left of the message's byte budget before
// anything is allocated for it, so a declared 4 GiB string or a billion
// map entries cost nothing.
type decoder struct {
	r     *bufio.Reader
	left  int64 // bytes this message may still take
	depth int
}

// maxDepth bounds the nesting of arrays and maps in a record.
const maxDepth = 64

var (
	errTooLarge  = errors.New("message larger than max_message_bytes")
	errTooDeep   = errors.New("values nested deeper than 64")
	errMalformed = errors.New("not MessagePack")
)

func (d *decoder) take(n int64) error {
	if n < 0 || n > d.left {
		return errTooLarge
	}
	d.left -= n
	return nil
}

func (d *decoder) byte() (byte, error) {
	if err := d.take(1); err != nil {
		return 0, err
	}
	return d.r.ReadByte()
}

func (d *decoder) peek() (byte, error) {
	b, err := d.r.Peek(1)
	if err != nil {
		return 0, err
	}
	return b[0], nil
}

// bytes reads n bytes into dst's spare room (n checked against the budget).
func (d *decoder) bytes(dst []byte, n int64) ([]byte, error) {
	if err := d.take(n); err != nil {
		return dst, err
	}
	start := len(dst)
	dst = append(dst, make([]byte, n)...)
	_, err := io.ReadFull(d.r, dst[start:])
	return dst, unexpected(err)
}

func (d *decoder) uint(n int) (uint64, error) {
	if err := d.take(int64(n)); err != nil {
		return 0, err
	}
	var b [8]byte
	if _, err := io.ReadFull(d.r, b[8-n:]); err != nil {
		return 0, unexpected(err)
	}
	return binary.BigEndian.Uint64(b[:]), nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Kinds of values, as far as the protocol's framing cares.
const (
	kindNil = iota
	kindBool
	kindInt
	kindFloat
	kindStr
	kindBin
	kindArray
	kindMap
	kindExt
)

// head reads a value's type byte and its length (the value of a
// fixint, bool or nil; the byte length of str, bin and ext; the entries of
// array and map) without its body. ext also gives its type.
func (d *decoder) head() (kind int, n int64, ext int8, err error) {
	c, err := d.byte()
	if err != nil {
		return 0, 0, 0, err
	}
	u := func(size int) int64 {
		v, e := d.uint(size)
		if e != nil {
			err = e
		}
		if v > math.MaxInt64 {
			err = errMalformed
		}
		return int64(v)
	}
	switch {
	case c <= 0x7f:
		return kindInt, int64(c), 0, nil
	case c >= 0xe0:
		return kindInt, int64(int8(c)), 0, nil
	case c&0xf0 == 0x80:
		return kindMap, int64(c & 0x0f), 0, nil
	case c&0xf0 == 0x90:
		return kindArray, int64(c & 0x0f), 0, nil
	case c&0xe0 == 0xa0:
		return kindStr, int64(c & 0x1f), 0, nil
	}
	switch c {
	case 0xc0:
		return kindNil, 0, 0, nil
	case 0xc2, 0xc3:
		return kindBool, int64(c - 0xc2), 0, nil
	case 0xc4, 0xc5, 0xc6:
		return kindBin, u(1 << (c - 0xc4)), 0, err
	case 0xc7, 0xc8, 0xc9:
		n := u(1 << (c - 0xc7))
		t, e := d.byte()
		if err == nil {
			err = e
		}
		return kindExt, n, int8(t), err
	case 0xca, 0xcb:
		return kindFloat, int64(c), 0, nil // the body is read by the caller
	case 0xcc, 0xcd, 0xce, 0xcf:
		v, e := d.uint(1 << (c - 0xcc))
		if v > math.MaxInt64 {
			return kindFloat, int64(c), 0, errUint64(v) // a uint64 past int64: kept as a number below
		}
		return kindInt, int64(v), 0, e
	case 0xd0, 0xd1, 0xd2, 0xd3:
		size := 1 << (c - 0xd0)
		v, e := d.uint(size)
		shift := 64 - 8*size
		return kindInt, int64(v<<shift) >> shift, 0, e
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8:
		t, e := d.byte()
		return kindExt, 1 << (c - 0xd4), int8(t), e
	case 0xd9, 0xda, 0xdb:
		return kindStr, u(1 << (c - 0xd9)), 0, err
	case 0xdc, 0xdd:
		return kindArray, u(2 << (c - 0xdc)), 0, err
	case 0xde, 0xdf:
		return kindMap, u(2 << (c - 0xde)), 0, err
	}
	return 0, 0, 0, errMalformed // 0xc1, never used
}

// errUint64 carries a uint64 too large for int64 through head.
type errUint64 uint64

func (e errUint64) Error() string { return "uint64" }

// float reads the body of a float32 (0xca) or float64 (0xcb).
func (d *decoder) float(code int64) (float64, error) {
	if code == 0xca {
		v, err := d.uint(4)
		return float64(math.Float32frombits(uint32(v))), err
	}
	v, err := d.uint(8)
	return math.Float64frombits(v), err
}

// json appends the next value as JSON. Strings that are not UTF-8 are
// made so (U+FFFD); bin becomes a string when it is UTF-8 text (Fluent Bit
// and older Fluentd send text as bin), else base64; ext becomes base64 of
// its body; map keys that are not strings are written as their JSON text.
func (d *decoder) json(dst []byte) ([]byte, error) {
	kind, n, _, err := d.head()
	var big errUint64
	if errors.As(err, &big) {
		return strconv.AppendUint(dst, uint64(big), 10), nil
	}
	if err != nil {
		return dst, err
	}
	switch kind {
	case kindNil:
		return append(dst, "null"...), nil
	case kindBool:
		return strconv.AppendBool(dst, n == 1), nil
	case kindInt:
		return strconv.AppendInt(dst, n, 10), nil
	case kindFloat:
		f, err := d.float(n)
		if err != nil {
			return dst, err
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return append(dst, "null"...), nil
		}
		return strconv.AppendFloat(dst, f, 'g', -1, 64), nil
	case kindStr, kindBin:
		return d.str(dst, n, kind == kindBin)
	case kindExt:
		raw, err := d.bytes(nil, n)
		if err != nil {
			return dst, err
		}
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, raw)
		return append(dst, '"'), nil
	case kindArray:
		if d.depth++; d.depth > maxDepth {
			return dst, errTooDeep
		}
		defer func() { d.depth-- }()
		if n > d.left { // every entry takes a byte at least
			return dst, errTooLarge
		}
		dst = append(dst, '[')
		for i := int64(0); i < n; i++ {
			if i > 0 {
				dst = append(dst, ',')
			}
			if dst, err = d.json(dst); err != nil {
				return dst, err
			}
		}
		return append(dst, ']'), nil
	case kindMap:
		if d.depth++; d.depth > maxDepth {
			return dst, errTooDeep
		}
		defer func() { d.depth-- }()
		if 2*n > d.left {
			return dst, errTooLarge
		}
		dst = append(dst, '{')
		for i := int64(0); i < n; i++ {
			if i > 0 {
				dst = append(dst, ',')
			}
			if dst, err = d.key(dst); err != nil {
				return dst, err
			}
			dst = append(dst, ':')
			if dst, err = d.json(dst); err != nil {
				return dst, err
			}
		}
		return append(dst, '}'), nil
	}
	return dst, errMalformed
}

// key appends a map key as a JSON string.
func (d *decoder) key(dst []byte) ([]byte, error) {
	c, err := d.peek()
	if err != nil {
		return dst, unexpected(err)
	}
	if c&0xe0 == 0xa0 || c == 0xd9 || c == 0xda || c == 0xdb || c == 0xc4 || c == 0xc5 || c == 0xc6 {
		kind, n, _, err := d.head()
		if err != nil {
			return dst, err
		}
		return d.str(dst, n, kind == kindBin)
	}
	v, err := d.json(nil)
	if err != nil {
		return dst, err
	}
	return pipeline.AppendJSONString(dst, string(v)), nil
}

// str appends a str or bin body of n bytes as a JSON string (bin that is
// not UTF-8: base64).
func (d *decoder) str(dst []byte, n int64, bin bool) ([]byte, error) {
	if err := d.take(n); err != nil {
		return dst, err
	}
	var buf [256]byte
	var raw []byte
	if n <= int64(len(buf)) {
		raw = buf[:n]
	} else {
		raw = make([]byte, n)
	}
	if _, err := io.ReadFull(d.r, raw); err != nil {
		return dst, unexpected(err)
	}
	if bin && !utf8.Valid(raw) {
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, raw)
		return append(dst, '"'), nil
	}
	return pipeline.AppendJSONString(dst, string(raw)), nil
}

// string reads a str (or bin) value.
func (d *decoder) string() (string, error) {
	kind, n, _, err := d.head()
	if err != nil {
		return "", err
	}
	if kind != kindStr && kind != kindBin {
		return "", fmt.Errorf("%w: a string was expected", errMalformed)
	}
	raw, err := d.bytes(nil, n)
	return string(raw), err
}

// time reads an event time: integer seconds, a float, or the EventTime
// extension (type 0: seconds and nanoseconds, big-endian uint32 each).
func (d *decoder) time() (time.Time, error) {
	kind, n, ext, err := d.head()
	if err != nil {
		return time.Time{}, err
	}
	switch kind {
	case kindInt:
		return time.Unix(n, 0).UTC(), nil
	case kindFloat:
		f, err := d.float(n)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e12 {
			return time.Time{}, fmt.Errorf("%w: event time %v", errMalformed, f)
		}
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(frac*1e9)).UTC(), nil
	case kindExt:
		raw, err := d.bytes(nil, n)
		if err != nil {
			return time.Time{}, err
		}
		if ext != 0 || len(raw) != 8 {
			return time.Time{}, fmt.Errorf("%w: ext type %d of %d bytes as an event time", errMalformed, ext, len(raw))
		}
		return time.Unix(int64(binary.BigEndian.Uint32(raw)), int64(binary.BigEndian.Uint32(raw[4:]))).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("%w: an event time was expected", errMalformed)
}

// skip reads a value and forgets it.
func (d *decoder) skip() error {
	_, err := d.json(nil)
	return err
}
