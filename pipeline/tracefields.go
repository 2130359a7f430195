package pipeline

import (
	"bytes"
	"encoding/binary"
	"errors"
	"unsafe"

	"github.com/tidwall/gjson"
)

// TraceFields is what the correlator needs of one event, taken from the
// filters' work when the event is processed and carried beside its document
// (in the disk buffer's framing and a Kafka header), so that assembling
// traces does not parse every document a second time. Each value is the
// one the encoded document holds at the same path:
//
//	TraceID   trace.id                 Time      @timestamp (Unix ns)
//	Service   service.name             Level     log.level
//	Status    http.response.status_code Dataset  event.dataset
//	Method    http.request.method      Path      url.path
//	Client    source.ip                Duration  event.duration (ns)
//
// Method, Path, Client and Duration are read only for the gateway's access
// log (GatewayDataset). The event's id is the record's ID. Strings decoded
// by UnmarshalBinary alias its input: copy what is kept.
type TraceFields struct {
	TraceID  string
	Time     int64
	Service  string
	Level    string
	Status   int64
	Dataset  string
	Method   string
	Path     string
	Client   string
	Duration int64
}

// traceFieldsV1 starts the binary form, so that a later layout can be told
// apart from this one.
const traceFieldsV1 = 1

// AppendBinary appends f in a compact form: a version byte, then the
// integers as varints and the strings uvarint-prefixed, in field order. An
// event without trace.id is the version byte alone.
func (f *TraceFields) AppendBinary(dst []byte) []byte {
	dst = append(dst, traceFieldsV1)
	if f.TraceID == "" {
		return dst
	}
	dst = appendStr(dst, f.TraceID)
	dst = binary.AppendVarint(dst, f.Time)
	dst = appendStr(dst, f.Service)
	dst = appendStr(dst, f.Level)
	dst = binary.AppendVarint(dst, f.Status)
	dst = appendStr(dst, f.Dataset)
	dst = appendStr(dst, f.Method)
	dst = appendStr(dst, f.Path)
	dst = appendStr(dst, f.Client)
	return binary.AppendVarint(dst, f.Duration)
}

var errTraceFields = errors.New("pipeline: malformed trace fields")

// UnmarshalBinary decodes what AppendBinary wrote; the strings alias b.
func (f *TraceFields) UnmarshalBinary(b []byte) error {
	if len(b) == 0 || b[0] != traceFieldsV1 {
		return errTraceFields
	}
	if len(b) == 1 {
		*f = TraceFields{} // no trace.id
		return nil
	}
	d := fieldDecoder{b: b[1:]}
	*f = TraceFields{TraceID: d.str(), Time: d.int(), Service: d.str(), Level: d.str(), Status: d.int(),
		Dataset: d.str(), Method: d.str(), Path: d.str(), Client: d.str(), Duration: d.int()}
	if d.bad {
		*f = TraceFields{}
		return errTraceFields
	}
	return nil
}

func appendStr(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

type fieldDecoder struct {
	b   []byte
	bad bool
}

func (d *fieldDecoder) int() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.bad = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *fieldDecoder) str() string {
	n, k := binary.Uvarint(d.b)
	if k <= 0 || uint64(len(d.b)-k) < n {
		d.bad = true
		return ""
	}
	s := d.b[k : k+int(n)]
	d.b = d.b[k+int(n):]
	if len(s) == 0 {
		return ""
	}
	return unsafe.String(&s[0], len(s))
}

// tracePaths are the paths TraceFields reads, in the order of tf* below.
var tracePaths = [...]string{"trace.id", "@timestamp", "service.name", "log.level", "http.response.status_code",
	"event.dataset", "http.request.method", "url.path", "source.ip", "event.duration"}

const (
	tfTraceID = iota
	tfTimestamp
	tfService
	tfLevel
	tfStatus
	tfDataset
	tfMethod
	tfPath
	tfClient
	tfDuration
	nTracePaths
)

// tracePath is the index of p in tracePaths, or -1.
func tracePath(p string) int {
	switch p {
	case "trace.id":
		return tfTraceID
	case "@timestamp":
		return tfTimestamp
	case "service.name":
		return tfService
	case "log.level":
		return tfLevel
	case "http.response.status_code":
		return tfStatus
	case "event.dataset":
		return tfDataset
	case "http.request.method":
		return tfMethod
	case "url.path":
		return tfPath
	case "source.ip":
		return tfClient
	case "event.duration":
		return tfDuration
	}
	return -1
}

// TraceFields returns what the correlator needs of e, read as the encoded
// document will hold it (what Get returns). An event without trace.id, or
// whose @timestamp is not a time, has an empty TraceID. The filters set
// most of these fields, so they are found in one pass over the edits; the
// document is looked at only for the others.
func (e *Event) TraceFields() TraceFields {
	var r [nTracePaths]gjson.Result
	var found [nTracePaths]bool
	for i := len(e.edits) - 1; i >= 0; i-- { // the last edit of a path wins
		ed := &e.edits[i]
		if k := tracePath(ed.path); k >= 0 && !found[k] {
			found[k] = true
			if ed.value != nil {
				r[k] = parseValue(ed.value)
			}
		}
	}
	get := func(k int) gjson.Result {
		if !found[k] {
			found[k] = true
			r[k] = e.Get(tracePaths[k])
		}
		return r[k]
	}
	id := get(tfTraceID).String()
	if id == "" {
		return TraceFields{}
	}
	ts, ok := ParseTimestamp(get(tfTimestamp).String())
	if !ok {
		return TraceFields{}
	}
	f := TraceFields{
		TraceID: id,
		Time:    ts.UnixNano(),
		Service: get(tfService).String(),
		Level:   get(tfLevel).String(),
		Status:  get(tfStatus).Int(),
		Dataset: get(tfDataset).String(),
	}
	if f.Dataset == GatewayDataset {
		f.Method, f.Path, f.Client, f.Duration = get(tfMethod).String(), get(tfPath).String(), get(tfClient).String(), get(tfDuration).Int()
	}
	return f
}

// GatewayDataset is the event.dataset of the gateway's access log, the
// request's entry: the only events whose method, path, client and duration
// the correlator reads (TraceFields leaves them empty for the others).
const GatewayDataset = "nginx.access"

// parseValue is gjson.Parse of a raw JSON value, without its work for the
// common case of a string with no escapes.
func parseValue(v []byte) gjson.Result {
	if n := len(v); n >= 2 && v[0] == '"' && v[n-1] == '"' && bytes.IndexByte(v[1:n-1], '\\') < 0 && bytes.IndexByte(v[1:n-1], '"') < 0 {
		return gjson.Result{Type: gjson.String, Raw: b2s(v), Str: b2s(v[1 : n-1])}
	}
	return gjson.Parse(b2s(v))
}
