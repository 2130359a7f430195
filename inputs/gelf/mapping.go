package gelf

import (
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/tidwall/gjson"

	"github.com/logweave/logweave/internal/recvqueue"
	"github.com/logweave/logweave/pipeline"
)

// TagParseFailure tags a GELF message that was not a JSON object.
const TagParseFailure = "_gelfparsefailure"

var parseFailures = promauto.NewCounter(prometheus.CounterOpts{
	Name: "logweave_gelf_parse_failures_total",
	Help: "GELF messages that were not a JSON object, kept as their text with the tag _gelfparsefailure."})

// Map turns a GELF message into a log line for the collector's filters: a
// JSON object with ECS names.
//
//   - short_message (or full_message when there is no short one) becomes
//     message; when it is itself a JSON object (an application logging JSON
//     to stdout), its fields become the document, as for a JSON log line.
//   - full_message, when there is also a short one, is kept as full_message.
//   - host → host.name; timestamp (epoch seconds) → timestamp, which the
//     normaliser turns into @timestamp unless the application's JSON has its
//     own time; level (syslog 0–7) → level, unless the application's JSON has
//     one; facility → log.logger; file/line → log.origin.file.name/line.
//   - Docker's gelf driver extras: _container_id → container.id,
//     _container_name → container.name, _image_name → container.image.name,
//     _image_id → container.image.id, _command → process.command_line,
//     _tag → container.tag, _created → container.created.
//   - Other _fields are kept without the underscore (so _request_id becomes
//     request_id and is found as the request id).
//
// A message that is not a JSON object (`{not json at all}`, a cut-off
// object) is kept whole: the line is {"message": its text, "tags":
// ["_gelfparsefailure"]}, Map returns false and
// logweave_gelf_parse_failures_total counts it.
func Map(msg []byte) ([]byte, bool) {
	if !gjson.ValidBytes(msg) || !gjson.ParseBytes(msg).IsObject() {
		// Reading what gjson can would give an empty message.
		parseFailures.Inc()
		e := &pipeline.Event{}
		e.SetString("message", string(msg))
		e.Set("tags", []byte(`["`+TagParseFailure+`"]`))
		return e.Encode(nil), false
	}
	root := gjson.ParseBytes(msg)
	short := root.Get("short_message")
	full := root.Get("full_message")
	text := short.String()
	if !short.Exists() {
		text = full.String()
	}
	e := &pipeline.Event{}
	trimmed := strings.TrimSpace(text)
	appJSON := false
	if strings.HasPrefix(trimmed, "{") && e.SetObject([]byte(trimmed)) {
		appJSON = true
	} else {
		e.SetString("message", strings.TrimRight(text, "\r\n"))
	}
	has := func(paths ...string) bool {
		for _, p := range paths {
			if e.Get(p).Exists() {
				return true
			}
		}
		return false
	}
	if short.Exists() && full.Exists() && full.String() != text {
		e.SetString("full_message", full.String())
	}
	if h := root.Get("host"); h.Exists() && !has("host.name") {
		e.SetString("host.name", h.String())
	}
	if ts := root.Get("timestamp"); ts.Exists() && !has("@timestamp", "timestamp", "time", "ts") {
		e.Set("timestamp", []byte(ts.Raw))
	}
	if lv := root.Get("level"); lv.Exists() && !(appJSON && has("level", "severity", "log.level")) {
		e.Set("level", []byte(lv.Raw))
	}
	if f := root.Get("facility"); f.Exists() {
		e.SetString("log.logger", f.String())
	}
	if f := root.Get("file"); f.Exists() {
		e.SetString("log.origin.file.name", f.String())
	}
	if l := root.Get("line"); l.Exists() {
		e.Set("log.origin.file.line", []byte(l.Raw))
	}
	root.ForEach(func(k, v gjson.Result) bool {
		key := k.String()
		if !strings.HasPrefix(key, "_") || key == "_id" {
			return true
		}
		name := key[1:]
		switch key {
		case "_container_id":
			name = "container.id"
		case "_container_name":
			name = "container.name"
		case "_image_name":
			name = "container.image.name"
		case "_image_id":
			name = "container.image.id"
		case "_command":
			name = "process.command_line"
		case "_tag":
			name = "container.tag"
		case "_created":
			name = "container.created"
		}
		if name == "" || (appJSON && has(name)) {
			return true
		}
		e.Set(name, []byte(v.Raw))
		return true
	})
	return e.Encode(make([]byte, 0, len(msg)+128)), true
}

// Envelopes wraps received messages as they are (format gelf: the
// receiver maps them, with Map, where it runs the filters) for a
// pipeline.Receiver. host names the node that received them ("" in the
// collector); seq numbers them.
func Envelopes(host string, batch []recvqueue.Received, seq *atomic.Int64) []pipeline.Envelope {
	envs := make([]pipeline.Envelope, len(batch))
	for i, m := range batch {
		envs[i] = pipeline.Envelope{ID: pipeline.EventID(host, "gelf", seq.Add(1), m.At.UnixNano(), m.Payload), ReadAt: m.At, Host: host, Format: "gelf", Line: m.Payload}
	}
	return envs
}
