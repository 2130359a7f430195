package syslog

import (
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/logweave/logweave/internal/malformed"
	"github.com/logweave/logweave/internal/recvqueue"
	"github.com/logweave/logweave/pipeline"
)

// TagParseFailure tags a message that had no syslog header (kept whole as
// its message).
const TagParseFailure = "_syslogparsefailure"

// Map turns a parsed message into a log line for the collector's filters,
// with ECS names: log.syslog.priority, .facility.code/.name,
// .severity.code/.name, .hostname, .appname, .procid, .msgid, .version,
// .structured_data; host.name; message; @timestamp; log.level from the
// severity. A message body that is a JSON object is parsed as a JSON log
// line (its own time, level and request id win). The structured-data
// element opentelemetry's trace_id and span_id → trace.id, span.id.
// ok false (not syslog): {"message": the text, "tags": ["_syslogparsefailure"]}.
func Map(m *Message, ok bool) []byte {
	e := &pipeline.Event{}
	if !ok {
		e.SetString("message", m.Msg)
		e.Set("tags", []byte(`["`+TagParseFailure+`"]`))
		return e.Encode(make([]byte, 0, len(m.Msg)+64))
	}
	trimmed := strings.TrimSpace(m.Msg)
	appJSON := strings.HasPrefix(trimmed, "{") && e.SetObject([]byte(trimmed))
	if !appJSON {
		e.SetString("message", m.Msg)
	}
	has := func(paths ...string) bool {
		for _, p := range paths {
			if e.Get(p).Exists() {
				return true
			}
		}
		return false
	}
	if m.Priority >= 0 {
		fac, sev := m.Priority/8, m.Priority%8
		e.SetInt("log.syslog.priority", int64(m.Priority))
		e.SetInt("log.syslog.facility.code", int64(fac))
		if fac < len(facilities) {
			e.SetString("log.syslog.facility.name", facilities[fac])
		}
		e.SetInt("log.syslog.severity.code", int64(sev))
		e.SetString("log.syslog.severity.name", severities[sev])
		if !has("log.level", "level", "severity") {
			e.SetString("log.level", levels[sev])
		}
	}
	set := func(path, v string) {
		if v != "" {
			e.SetString(path, v)
		}
	}
	set("log.syslog.hostname", m.Hostname)
	set("log.syslog.appname", m.AppName)
	set("log.syslog.procid", m.ProcID)
	set("log.syslog.msgid", m.MsgID)
	if m.Version > 0 {
		e.SetInt("log.syslog.version", int64(m.Version))
	}
	if m.Hostname != "" && !has("host.name") {
		e.SetString("host.name", m.Hostname)
	}
	if len(m.StructuredData) > 0 {
		var b []byte
		b = append(b, '{')
		ids := make([]string, 0, len(m.StructuredData))
		for id := range m.StructuredData {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for i, id := range ids {
			if i > 0 {
				b = append(b, ',')
			}
			b = pipeline.AppendJSONString(b, id)
			b = append(b, ':', '{')
			params := m.StructuredData[id]
			names := make([]string, 0, len(params))
			for k := range params {
				names = append(names, k)
			}
			slices.Sort(names)
			for j, k := range names {
				if j > 0 {
					b = append(b, ',')
				}
				b = pipeline.AppendJSONString(b, k)
				b = append(b, ':')
				b = pipeline.AppendJSONString(b, params[k])
			}
			b = append(b, '}')
		}
		e.Set("log.syslog.structured_data", append(b, '}'))
		if otel := m.StructuredData["opentelemetry"]; otel != nil {
			if v := otel["trace_id"]; v != "" && !has("trace.id") {
				e.SetString("trace.id", v)
			}
			if v := otel["span_id"]; v != "" && !has("span.id") {
				e.SetString("span.id", v)
			}
		}
	}
	if !m.Timestamp.IsZero() && !has("@timestamp", "timestamp", "time", "ts") {
		e.SetString("@timestamp", m.Timestamp.UTC().Format(time.RFC3339Nano))
	}
	return e.Encode(make([]byte, 0, len(m.Msg)+384)) // one allocation, sized for the header fields
}

// Envelopes parses and maps received messages (one without a syslog header
// is kept as its text, and counted) for a pipeline.Receiver; loc is the
// zone of RFC 3164 timestamps. host names the node that received them (""
// in the collector); seq numbers them.
func Envelopes(host string, batch []recvqueue.Received, loc *time.Location, seq *atomic.Int64) []pipeline.Envelope {
	envs := make([]pipeline.Envelope, len(batch))
	for i, m := range batch {
		msg, ok := Parse(m.Payload, m.At, loc)
		if !ok {
			malformed.Count("syslog", "no_header")
		}
		envs[i] = pipeline.Envelope{ID: pipeline.EventID(host, "syslog", seq.Add(1), m.At.UnixNano(), m.Payload), ReadAt: m.At, Host: host, Line: Map(&msg, ok)}
	}
	return envs
}
