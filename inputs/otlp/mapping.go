package otlp

import (
	"encoding/base64"
	"encoding/hex"
	"math"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/logweave/logweave/pipeline"
)

// Record is one log record, mapped: its JSON line for the filters and its
// time.
type Record struct {
	Line []byte
	Time time.Time
}

// Map turns the log records of an export request into log lines with ECS
// names:
//
//   - body → message; a map body → fields of the document;
//   - severityText → log.level (else the level of severityNumber);
//   - traceId, spanId (hex) → trace.id, span.id;
//   - resource and record attributes → fields under their names (dots as
//     objects: service.name stays service.name, k8s.pod.name becomes
//     k8s.pod.name), a record's attribute over its resource's;
//   - timeUnixNano, else observedTimeUnixNano → @timestamp;
//   - http.request.header.x-request-id (a string, or the first of a list,
//     as the semantic conventions give headers) → http.request.id, so a
//     request correlates whether its services log through files, GELF or
//     OTLP; scope name → log.logger.
func Map(ld plog.Logs) []Record {
	var out []Record
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		res := rl.Resource().Attributes()
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			sl := sls.At(j)
			lrs := sl.LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				out = append(out, mapRecord(res, sl.Scope().Name(), lrs.At(k)))
			}
		}
	}
	return out
}

func mapRecord(res pcommon.Map, scope string, lr plog.LogRecord) Record {
	e := &pipeline.Event{}
	body := lr.Body()
	switch body.Type() {
	case pcommon.ValueTypeMap:
		e.SetObject(appendValue(nil, body))
	case pcommon.ValueTypeEmpty:
	case pcommon.ValueTypeStr:
		e.SetString("message", body.Str())
	default:
		e.SetString("message", body.AsString())
	}
	has := func(p string) bool { return e.Get(p).Exists() }
	setAttrs := func(m pcommon.Map) {
		m.Range(func(k string, v pcommon.Value) bool {
			if k == "" || has(k) {
				return true
			}
			e.Set(k, appendValue(nil, v))
			return true
		})
	}
	setAttrs(lr.Attributes())
	setAttrs(res)
	if v, ok := lr.Attributes().Get("http.request.header.x-request-id"); ok && !has("http.request.id") {
		if v.Type() == pcommon.ValueTypeSlice && v.Slice().Len() > 0 {
			v = v.Slice().At(0)
		}
		if s := v.AsString(); s != "" {
			e.SetString("http.request.id", s)
		}
	}
	if lvl := lr.SeverityText(); lvl != "" && !has("log.level") {
		e.SetString("log.level", strings.ToLower(lvl))
	} else if n := lr.SeverityNumber(); n > 0 && !has("log.level") {
		e.SetString("log.level", levelOf(int(n)))
	}
	if id := lr.TraceID(); !id.IsEmpty() && !has("trace.id") {
		e.SetString("trace.id", hex.EncodeToString(id[:]))
	}
	if id := lr.SpanID(); !id.IsEmpty() && !has("span.id") {
		e.SetString("span.id", hex.EncodeToString(id[:]))
	}
	if scope != "" && !has("log.logger") {
		e.SetString("log.logger", scope)
	}
	ts := lr.Timestamp()
	if ts == 0 {
		ts = lr.ObservedTimestamp()
	}
	var t time.Time
	if ts != 0 {
		t = ts.AsTime().UTC()
		if !has("@timestamp") {
			e.SetString("@timestamp", t.Format(time.RFC3339Nano))
		}
	}
	return Record{Line: e.Encode(make([]byte, 0, 512)), Time: t}
}

// levelOf names a severity number's range (OTLP's data model).
func levelOf(n int) string {
	switch {
	case n <= 4:
		return "trace"
	case n <= 8:
		return "debug"
	case n <= 12:
		return "info"
	case n <= 16:
		return "warn"
	case n <= 20:
		return "error"
	}
	return "fatal"
}

// appendValue appends v as JSON (map keys as they are: literal keys of
// nested objects; bytes as base64).
func appendValue(dst []byte, v pcommon.Value) []byte {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return pipeline.AppendJSONString(dst, v.Str())
	case pcommon.ValueTypeInt:
		return strconv.AppendInt(dst, v.Int(), 10)
	case pcommon.ValueTypeDouble:
		if f := v.Double(); !math.IsNaN(f) && !math.IsInf(f, 0) {
			return strconv.AppendFloat(dst, f, 'g', -1, 64)
		}
		return append(dst, "null"...)
	case pcommon.ValueTypeBool:
		return strconv.AppendBool(dst, v.Bool())
	case pcommon.ValueTypeBytes:
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, v.Bytes().AsRaw())
		return append(dst, '"')
	case pcommon.ValueTypeSlice:
		s := v.Slice()
		dst = append(dst, '[')
		for i := 0; i < s.Len(); i++ {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendValue(dst, s.At(i))
		}
		return append(dst, ']')
	case pcommon.ValueTypeMap:
		dst = append(dst, '{')
		first := true
		v.Map().Range(func(k string, v pcommon.Value) bool {
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = pipeline.AppendJSONString(dst, k)
			dst = append(dst, ':')
			dst = appendValue(dst, v)
			return true
		})
		return append(dst, '}')
	}
	return append(dst, "null"...)
}

// Envelopes wraps mapped records for a pipeline.Receiver. host names the
// node that received them ("" in the collector). The id is the record's
// content: a request retried (its answer was lost) overwrites itself.
func Envelopes(host string, recs []Record, now time.Time) []pipeline.Envelope {
	envs := make([]pipeline.Envelope, len(recs))
	for i, r := range recs {
		envs[i] = pipeline.Envelope{ID: pipeline.EventID(host, "otlp", 0, 0, r.Line), ReadAt: now, Host: host, Line: r.Line}
	}
	return envs
}
