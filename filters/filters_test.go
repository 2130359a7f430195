package filters_test

import (
	"strings"
	"testing"
	"time"

	"github.com/logweave/logweave/filters"
	"github.com/logweave/logweave/pipeline"
	"github.com/tidwall/gjson"
)

var readAt = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func process(t *testing.T, line string) (pipeline.Record, *pipeline.Event) {
	t.Helper()
	idx, _ := pipeline.ParseIndexPattern("logs-%{+yyyy.MM.dd}")
	p := filters.NewProcessor(idx, nil)
	ev := &pipeline.Event{}
	env := &pipeline.Envelope{ID: "id1", ReadAt: readAt, Host: "node-1", Path: "/var/log/app.log", Offset: 10, Line: []byte(line)}
	rec := p.Process(env, ev, nil)
	if !gjson.ValidBytes(rec.Doc) {
		t.Fatalf("invalid JSON: %s", rec.Doc)
	}
	return rec, ev
}

func TestNormaliseTimestamps(t *testing.T) {
	cases := []struct {
		line, want, index string
	}{
		{`{"@timestamp":"2026-11-25T23:59:59.999Z"}`, "2026-11-25T23:59:59.999Z", "logs-2026.11.25"},
		{`{"timestamp":"2026-11-26T01:00:00+02:00"}`, "2026-11-25T23:00:00.000Z", "logs-2026.11.25"},
		{`{"time":"2026-11-26 00:00:01.5"}`, "2026-11-26T00:00:01.500Z", "logs-2026.11.26"},
		{`{"time":"2026-11-26T00:00:01,250Z"}`, "2026-11-26T00:00:01.250Z", "logs-2026.11.26"},
		{`{"ts":1764115199}`, "2025-11-25T23:59:59.000Z", "logs-2025.11.25"},
		{`{"ts":1764115199123}`, "2025-11-25T23:59:59.123Z", "logs-2025.11.25"},
		{`{"ts":1764115199.5}`, "2025-11-25T23:59:59.500Z", "logs-2025.11.25"},
		{`{"ts":"1764115199123"}`, "2025-11-25T23:59:59.123Z", "logs-2025.11.25"},
		{`{"ts":1764115199123456}`, "2025-11-25T23:59:59.123Z", "logs-2025.11.25"},
		{`{"ts":1764115199123456789}`, "2025-11-25T23:59:59.123Z", "logs-2025.11.25"},
		{`{"msg":"no time"}`, "2026-11-26T12:00:00.000Z", "logs-2026.11.26"},
		{`not json at all`, "2026-11-26T12:00:00.000Z", "logs-2026.11.26"},
	}
	for _, c := range cases {
		rec, _ := process(t, c.line)
		if got := gjson.GetBytes(rec.Doc, "@timestamp").String(); got != c.want {
			t.Errorf("%s: @timestamp %s, want %s", c.line, got, c.want)
		}
		if rec.Index != c.index {
			t.Errorf("%s: index %s, want %s", c.line, rec.Index, c.index)
		}
		for _, f := range []string{"timestamp", "time", "ts"} {
			if gjson.GetBytes(rec.Doc, f).Exists() {
				t.Errorf("%s: source field %s kept: %s", c.line, f, rec.Doc)
			}
		}
	}
}

func TestNormaliseBadTimestampIsTaggedNotDropped(t *testing.T) {
	rec, ev := process(t, `{"time":"yesterday-ish","msg":"x"}`)
	if !ev.HasTag(filters.TagDateParseFailure) {
		t.Fatalf("not tagged: %s", rec.Doc)
	}
	if gjson.GetBytes(rec.Doc, "time").String() != "yesterday-ish" {
		t.Fatalf("unparsed time field lost: %s", rec.Doc)
	}
	if gjson.GetBytes(rec.Doc, "@timestamp").String() != "2026-11-26T12:00:00.000Z" {
		t.Fatalf("@timestamp: %s", rec.Doc)
	}
}

func TestNormaliseECSFields(t *testing.T) {
	rec, _ := process(t, `{"msg":"hello","level":"WARN","service":"auth","request_id":"r-1","nested":{"a":1}}`)
	want := map[string]string{
		"message": "hello", "log.level": "warn", "service.name": "auth",
		"http.request.id": "r-1", "trace.id": "r-1", "host.name": "node-1",
		"log.file.path": "/var/log/app.log", "log.offset": "10", "event.id": "id1", "nested.a": "1",
	}
	for path, v := range want {
		if got := gjson.GetBytes(rec.Doc, path).String(); got != v {
			t.Errorf("%s = %q, want %q in %s", path, got, v, rec.Doc)
		}
	}
	for _, gone := range []string{"msg", "level"} {
		if gjson.GetBytes(rec.Doc, gone).Exists() {
			t.Errorf("%s kept after rename: %s", gone, rec.Doc)
		}
	}
	if rec.Key != "r-1" {
		t.Errorf("key %q", rec.Key)
	}
	// Docker-style "log" holds the text; a numeric syslog severity.
	rec, _ = process(t, `{"log":"text from docker","severity":3}`)
	if gjson.GetBytes(rec.Doc, "message").String() != "text from docker" || gjson.GetBytes(rec.Doc, "log.level").String() != "error" {
		t.Errorf("got %s", rec.Doc)
	}
	// message wins over msg; an existing service object is left alone.
	rec, _ = process(t, `{"message":"m","msg":"other","service":{"name":"s","version":"1"}}`)
	if gjson.GetBytes(rec.Doc, "message").String() != "m" || gjson.GetBytes(rec.Doc, "msg").String() != "other" ||
		gjson.GetBytes(rec.Doc, "service.version").String() != "1" {
		t.Errorf("got %s", rec.Doc)
	}
}

func TestJSONParseFailureKeepsTheLine(t *testing.T) {
	for _, line := range []string{`plain text`, `{"unterminated": `, `["an","array"]`, `42`, "tab\there \"quoted\" \x00 byte"} {
		rec, ev := process(t, line)
		if !ev.HasTag(filters.TagJSONParseFailure) {
			t.Errorf("%q: not tagged", line)
		}
		if got := gjson.GetBytes(rec.Doc, "message").String(); got != line {
			t.Errorf("%q: message %q", line, got)
		}
	}
}

func TestRequestIDFieldOrderAndKinds(t *testing.T) {
	cases := map[string]string{
		`{"request_id":"a","x_request_id":"b"}`:            "a",
		`{"x_request_id":"b"}`:                             "b",
		`{"requestId":"c"}`:                                "c",
		`{"req_id":12345}`:                                 "12345",
		`{"headers":{"x-request-id":"h"}}`:                 "h",
		`{"http":{"request":{"id":"e"}},"request_id":"x"}`: "e",
		`{"request_id":""}`:                                "",
		`{"request_id":{"not":"a string"}}`:                "",
	}
	for line, want := range cases {
		rec, _ := process(t, line)
		if got := gjson.GetBytes(rec.Doc, "trace.id").String(); got != want || rec.Key != want {
			t.Errorf("%s: trace.id %q key %q, want %q", line, got, rec.Key, want)
		}
	}
}

func TestDocumentsNeverGetDuplicateKeys(t *testing.T) {
	// Inputs that already hold the fields the filters write.
	lines := []string{
		`{"@timestamp":"2026-11-26T00:00:00Z","message":"m","log":{"level":"info"},"tags":["x"],"event":{"id":"old"},"host":{"name":"h"}}`,
		`{"log.level":"info","http.request.id":"r","event.id":"e"}`,
		`{"log":"scalar","level":"info","trace":"scalar-too","request_id":"r"}`,
	}
	for _, line := range lines {
		rec, _ := process(t, line)
		var walk func(r gjson.Result)
		walk = func(r gjson.Result) {
			seen := map[string]bool{}
			r.ForEach(func(k, v gjson.Result) bool {
				if seen[k.String()] {
					t.Errorf("%s: duplicate key %q in %s", line, k.String(), rec.Doc)
				}
				seen[k.String()] = true
				if v.IsObject() {
					walk(v)
				}
				return true
			})
		}
		walk(gjson.ParseBytes(rec.Doc))
		if strings.Count(string(rec.Doc), `"tags"`) > 1 {
			t.Errorf("tags twice: %s", rec.Doc)
		}
	}
}
