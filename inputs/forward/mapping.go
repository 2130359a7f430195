package forward

import (
	"strings"
	"sync/atomic"
	"time"

	"github.com/tidwall/gjson"

	"github.com/logweave/logweave/pipeline"
)

// Map turns a Forward entry into a log line for the collector's filters:
// a JSON object with ECS names.
//
//   - The record's fields become the document. Its log (what Docker's
//     fluentd driver and Fluent Bit's tail send) or message field is the
//     message; when that text is itself a JSON object (an application
//     logging JSON), its fields become the document, as for a JSON log
//     line, and the record's other fields are added where it lacks them.
//   - The tag → fluent.tag; the event time → @timestamp unless the
//     application's JSON has its own time.
//   - Docker's fluentd driver: container_id → container.id,
//     container_name → container.name (without Docker's leading /),
//     source → stream (stdout/stderr, as the json-file input writes it).
func Map(tag string, e Entry) []byte {
	root := gjson.ParseBytes(e.Record)
	msgKey := ""
	var text string
	for _, k := range []string{"log", "message"} {
		if v := root.Get(k); v.Type == gjson.String { // neither key needs escaping as a path
			msgKey, text = k, v.Str
			break
		}
	}
	ev := &pipeline.Event{}
	trimmed := strings.TrimSpace(text)
	appJSON := strings.HasPrefix(trimmed, "{") && ev.SetObject([]byte(trimmed))
	if !appJSON {
		ev.SetObject(e.Record)
		if msgKey == "log" {
			ev.Delete("log")
		}
		if msgKey != "" {
			ev.SetString("message", strings.TrimRight(text, "\r\n"))
		}
	}
	has := func(paths ...string) bool {
		for _, p := range paths {
			if ev.Get(p).Exists() {
				return true
			}
		}
		return false
	}
	root.ForEach(func(k, v gjson.Result) bool {
		name := k.String()
		switch name {
		case msgKey:
			return true
		case "container_id":
			name = "container.id"
		case "container_name":
			v = gjson.Result{Type: gjson.String, Str: strings.TrimPrefix(v.String(), "/")}
			name = "container.name"
		case "source":
			name = "stream"
		default:
			if !appJSON {
				return true // already in the document
			}
		}
		if name == "" || has(name) {
			return true
		}
		if v.Type == gjson.String && v.Raw == "" {
			ev.SetString(name, v.Str)
		} else {
			ev.Set(name, []byte(v.Raw))
		}
		if !appJSON && name != k.String() {
			ev.Delete(k.String())
		}
		return true
	})
	if tag != "" && !has("fluent.tag") {
		ev.SetString("fluent.tag", tag)
	}
	if !e.Time.IsZero() && !has("@timestamp", "timestamp", "time", "ts") {
		ev.SetString("@timestamp", e.Time.UTC().Format(time.RFC3339Nano))
	}
	return ev.Encode(make([]byte, 0, len(e.Record)+64))
}

// Envelopes wraps a message's entries, each mapped (Map), for a
// pipeline.Receiver. host names the node that received them (the
// shipper's; "" in the collector). A chunk sent again (its ack was lost)
// gets the same ids, so it overwrites itself; without a chunk id, seq
// numbers the entries and nothing is resent.
func Envelopes(host string, m *Message, seq *atomic.Int64, now time.Time) []pipeline.Envelope {
	envs := make([]pipeline.Envelope, len(m.Entries))
	for i, e := range m.Entries {
		origin, n := "forward\x00"+m.Tag+"\x00"+m.Chunk, int64(i)
		if m.Chunk == "" {
			origin, n = "forward\x00"+m.Tag, seq.Add(1)
		}
		envs[i] = pipeline.Envelope{ID: pipeline.EventID(host, origin, n, e.Time.UnixNano(), e.Record), ReadAt: now, Host: host, Line: Map(m.Tag, e)}
	}
	return envs
}
