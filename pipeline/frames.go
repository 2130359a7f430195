package pipeline

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
	"unsafe"
)

// The shipper's binary batch framing, version 1: envelopes with each line's
// bytes as they were read, length-prefixed, instead of escaped into a JSON
// string that the collector unescapes again (together ~15% of the CPU a
// line cost both processes). It is POSTed to /v2/events with
// FramesContentType; a collector that does not know it answers 404 there,
// and the shipper sends NDJSON envelopes to /v1/events instead, which every
// version takes.
//
//	batch  = "LWF1" record*
//	record = flags:byte id:str ts:varint offset:varint
//	         [host:str] [path:str] [fields:str] [format:str] line:str
//	str    = length:uvarint bytes
//
// ts is Unix nanoseconds (0: none). host, path, fields and format follow
// only when their flag (1, 2, 4, 8) is set; otherwise they are the previous
// record's (the first record's are empty), so a batch of one file's lines
// names the file once.
const (
	FramesContentType = "application/x-logweave-frames"
	framesMagic       = "LWF1"
)

const (
	frameHost = 1 << iota
	framePath
	frameFields
	frameFormat
)

// FrameWriter appends envelopes to a batch body in the binary framing.
type FrameWriter struct {
	host, path, format string
	fields             []byte
	started            bool
}

// Append appends e to dst (the batch's magic before the first record);
// Reset starts the next batch.
func (w *FrameWriter) Append(dst []byte, e *Envelope) []byte {
	if !w.started {
		dst = append(dst, framesMagic...)
		w.started = true
	}
	var flags byte
	if e.Host != w.host {
		flags |= frameHost
	}
	if e.Path != w.path {
		flags |= framePath
	}
	if string(e.Fields) != string(w.fields) {
		flags |= frameFields
	}
	if e.Format != w.format {
		flags |= frameFormat
	}
	dst = append(dst, flags)
	dst = appendStr(dst, e.ID)
	var ts int64
	if !e.ReadAt.IsZero() {
		ts = e.ReadAt.UnixNano()
	}
	dst = binary.AppendVarint(dst, ts)
	dst = binary.AppendVarint(dst, e.Offset)
	if flags&frameHost != 0 {
		dst = appendStr(dst, e.Host)
		w.host = e.Host
	}
	if flags&framePath != 0 {
		dst = appendStr(dst, e.Path)
		w.path = e.Path
	}
	if flags&frameFields != 0 {
		dst = appendStr(dst, b2s(e.Fields))
		w.fields = append(w.fields[:0], e.Fields...)
	}
	if flags&frameFormat != 0 {
		dst = appendStr(dst, e.Format)
		w.format = e.Format
	}
	return appendStr(dst, b2s(e.Line))
}

// Reset makes the next Append start a new batch.
func (w *FrameWriter) Reset() {
	*w = FrameWriter{fields: w.fields[:0]}
}

// ErrBadFrames is wrapped by what CountFrames and FrameReader report of a
// body that is not a well-formed batch.
var ErrBadFrames = errors.New("malformed batch framing")

// CountFrames checks that body is a well-formed batch and counts its
// records, without decoding them: the collector bounds a request's records
// (and refuses a broken body) before it processes any.
func CountFrames(body []byte) (int, error) {
	r, err := NewFrameReader(body)
	if err != nil {
		return 0, err
	}
	n := 0
	for r.skip() {
		n++
	}
	return n, r.Err()
}

// FrameReader decodes a batch body. ID, Line and Fields alias the body
// (keep the body while they are in use); Host, Path and Format are copied
// once per change.
type FrameReader struct {
	b, all             []byte
	host, path, format string
	fields             []byte
	err                error
}

// NewFrameReader checks the batch's magic.
func NewFrameReader(body []byte) (*FrameReader, error) {
	if len(body) < len(framesMagic) || string(body[:len(framesMagic)]) != framesMagic {
		return nil, fmt.Errorf("%w: does not start with %q", ErrBadFrames, framesMagic)
	}
	return &FrameReader{b: body[len(framesMagic):], all: body}, nil
}

// Next decodes the next record into e, reporting false at the end of the
// body or at an error (see Err).
func (r *FrameReader) Next(e *Envelope) bool {
	var f frameRecord
	if !r.next(&f) {
		return false
	}
	if f.flags&frameHost != 0 {
		r.host = string(f.host)
	}
	if f.flags&framePath != 0 {
		r.path = string(f.path)
	}
	if f.flags&frameFields != 0 {
		r.fields = f.fields
	}
	if f.flags&frameFormat != 0 {
		r.format = string(f.format)
	}
	*e = Envelope{ID: b2s(f.id), Host: r.host, Path: r.path, Offset: f.offset, Fields: r.fields, Format: r.format, Line: f.line}
	if len(e.Fields) == 0 {
		e.Fields = nil
	}
	if f.ts != 0 {
		e.ReadAt = time.Unix(0, f.ts).UTC()
	}
	return true
}

// Err is the error that stopped Next, if any.
func (r *FrameReader) Err() error { return r.err }

func (r *FrameReader) skip() bool {
	var f frameRecord
	return r.next(&f)
}

type frameRecord struct {
	flags                          byte
	id, host, path, fields, format []byte
	line                           []byte
	ts, offset                     int64
}

func (r *FrameReader) next(f *frameRecord) bool {
	if r.err != nil || len(r.b) == 0 {
		return false
	}
	at := len(r.all) - len(r.b)
	d := fieldDecoder{b: r.b[1:]}
	f.flags = r.b[0]
	bytesOf := func() []byte {
		s := d.str()
		return unsafe.Slice(unsafe.StringData(s), len(s))
	}
	f.id = bytesOf()
	f.ts = d.int()
	f.offset = d.int()
	if f.flags&frameHost != 0 {
		f.host = bytesOf()
	}
	if f.flags&framePath != 0 {
		f.path = bytesOf()
	}
	if f.flags&frameFields != 0 {
		f.fields = bytesOf()
	}
	if f.flags&frameFormat != 0 {
		f.format = bytesOf()
	}
	f.line = bytesOf()
	if d.bad || f.flags&^(frameHost|framePath|frameFields|frameFormat) != 0 {
		r.err = fmt.Errorf("%w: record at byte %d", ErrBadFrames, at)
		return false
	}
	r.b = d.b
	return true
}
