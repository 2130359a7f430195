package beats

import (
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/logweave/logweave/pipeline"
)

// Map turns a Beats event into a log line for the collector's filters. The
// event is already close to ECS (@timestamp, message, log.file.path,
// log.offset, host.name, agent.*, ecs.version) and stays as it is but for
// @metadata, which is dropped (as Logstash's Elasticsearch output does). A
// message that is itself a JSON object (an application logging JSON, read
// by Filebeat as text) is parsed as a JSON log line: its fields become the
// document and the event's other fields are added where it lacks them.
func Map(event []byte) []byte {
	root := gjson.ParseBytes(event)
	e := &pipeline.Event{}
	msg := root.Get("message")
	trimmed := strings.TrimSpace(msg.String())
	if msg.Type != gjson.String || !strings.HasPrefix(trimmed, "{") || !e.SetObject([]byte(trimmed)) {
		e.SetObject(event)
		e.Delete("@metadata")
		return e.Encode(make([]byte, 0, len(event)+64))
	}
	ownTime := e.Get("@timestamp").Exists() || e.Get("timestamp").Exists() || e.Get("time").Exists() || e.Get("ts").Exists()
	root.ForEach(func(k, v gjson.Result) bool {
		switch {
		case k.Str == "message" || k.Str == "@metadata":
			return true
		case k.Str == "@timestamp" && ownTime: // the application's time, not when Filebeat read the line
			return true
		}
		if !e.Get(k.Str).Exists() {
			e.Set(k.Str, []byte(v.Raw))
		}
		return true
	})
	return e.Encode(make([]byte, 0, len(event)+64))
}

// Envelopes wraps a window's events, each mapped (Map), for a
// pipeline.Receiver. host names the node that received them ("" in the
// collector). The id is the event's content: a window sent again (its ack
// was lost) overwrites itself.
func Envelopes(host string, events [][]byte, now time.Time) []pipeline.Envelope {
	envs := make([]pipeline.Envelope, len(events))
	for i, e := range events {
		envs[i] = pipeline.Envelope{ID: pipeline.EventID(host, "beats", 0, 0, e), ReadAt: now, Host: host, Line: Map(e)}
	}
	return envs
}
