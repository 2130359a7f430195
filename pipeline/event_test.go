package pipeline_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/logweave/logweave/pipeline"
	"github.com/tidwall/gjson"
)

func TestEncodeSplicesEdits(t *testing.T) {
	cases := []struct {
		name string
		doc  string
		edit func(e *pipeline.Event)
		want string
	}{
		{"no edits keeps document", `{"a":1,"b":{"c":"x"}}`, func(e *pipeline.Event) {}, `{"a":1,"b":{"c":"x"}}`},
		{"replace top level", `{"a":1,"b":2}`, func(e *pipeline.Event) { e.SetInt("a", 5) }, `{"a":5,"b":2}`},
		{"add nested into existing object", `{"log":{"file":"f"},"x":1}`, func(e *pipeline.Event) { e.SetString("log.level", "info") }, `{"log":{"file":"f","level":"info"},"x":1}`},
		{"create nested objects", `{"x":1}`, func(e *pipeline.Event) {
			e.SetString("http.request.id", "r1")
			e.SetString("trace.id", "r1")
			e.SetString("http.method", "GET")
		}, `{"x":1,"http":{"request":{"id":"r1"},"method":"GET"},"trace":{"id":"r1"}}`},
		{"rename", `{"msg":"hi","level":"INFO"}`, func(e *pipeline.Event) { e.Rename("msg", "message") }, `{"level":"INFO","message":"hi"}`},
		{"delete nested", `{"a":{"b":1,"c":2}}`, func(e *pipeline.Event) { e.Delete("a.b") }, `{"a":{"c":2}}`},
		{"scalar in the way of an object", `{"log":"text"}`, func(e *pipeline.Event) { e.SetString("log.level", "warn") }, `{"log_value":"text","log":{"level":"warn"}}`},
		{"literal dotted key replaced in place", `{"log.level":"INFO","a":1}`, func(e *pipeline.Event) { e.SetString("log.level", "info") }, `{"log.level":"info","a":1}`},
		{"tags appended to existing tags", `{"tags":["a"]}`, func(e *pipeline.Event) { e.AddTag("_jsonparsefailure") }, `{"tags":["a","_jsonparsefailure"]}`},
		{"nil document", ``, func(e *pipeline.Event) { e.SetString("message", "plain \"text\"\n"); e.AddTag("t") }, `{"message":"plain \"text\"\n","tags":["t"]}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := &pipeline.Event{}
			if c.doc != "" {
				e.Doc = []byte(c.doc)
			}
			c.edit(e)
			got := string(e.Encode(nil))
			if got != c.want {
				t.Fatalf("got  %s\nwant %s", got, c.want)
			}
			if !json.Valid([]byte(got)) {
				t.Fatalf("invalid JSON %s", got)
			}
		})
	}
}

func TestGetSeesEditsAndLiteralDottedKeys(t *testing.T) {
	e := &pipeline.Event{Doc: []byte(`{"http.request.id":"abc","a":{"b":"c"}}`)}
	if got := e.Get("http.request.id").String(); got != "abc" {
		t.Fatalf("literal dotted key: got %q", got)
	}
	if got := e.Get("a.b").String(); got != "c" {
		t.Fatalf("nested: got %q", got)
	}
	e.SetString("a.b", "d")
	if got := e.Get("a.b").String(); got != "d" {
		t.Fatalf("edit not seen: got %q", got)
	}
	e.Delete("a.b")
	if e.Get("a.b").Exists() {
		t.Fatal("deleted field still visible")
	}
}

func TestAppendJSONStringEscapesAndRepairsUTF8(t *testing.T) {
	in := "a\"b\\c\x01\té\xff"
	got := pipeline.AppendJSONString(nil, in)
	var back string
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatalf("%s: %v", got, err)
	}
	if back != "a\"b\\c\x01\té\ufffd" {
		t.Fatalf("round trip: %q", back)
	}
}

func TestRecordBinaryRoundTrip(t *testing.T) {
	r := pipeline.Record{ID: "id1", Index: "logs-2026.11.26", Key: "req", Doc: []byte(`{"a":1}`)}
	var got pipeline.Record
	if err := got.UnmarshalBinary(r.AppendBinary(nil)); err != nil {
		t.Fatal(err)
	}
	if got.ID != r.ID || got.Index != r.Index || got.Key != r.Key || string(got.Doc) != string(r.Doc) {
		t.Fatalf("got %+v", got)
	}
	if err := got.UnmarshalBinary(r.AppendBinary(nil)[:10]); err == nil {
		t.Fatal("truncated record decoded")
	}
	if got.Trace != nil {
		t.Fatalf("a record without trace fields decoded with %x", got.Trace)
	}

	// With trace fields: a fifth field after the four a previous version
	// reads (it stops after Doc), so it still reads what this one writes.
	tf := pipeline.TraceFields{TraceID: "req", Time: 1764151200123000000, Service: "orders", Level: "error", Status: 502,
		Dataset: "nginx.access", Method: "POST", Path: "/x", Client: "::1", Duration: -1}
	r.Trace = tf.AppendBinary(nil)
	withTrace := r.AppendBinary(nil)
	if old := (&pipeline.Record{ID: r.ID, Index: r.Index, Key: r.Key, Doc: r.Doc}).AppendBinary(nil); !bytes.HasPrefix(withTrace, old) {
		t.Fatalf("the four fields moved: %x, was %x", withTrace, old)
	}
	if err := got.UnmarshalBinary(withTrace); err != nil {
		t.Fatal(err)
	}
	var back pipeline.TraceFields
	if err := back.UnmarshalBinary(got.Trace); err != nil || back != tf {
		t.Fatalf("trace fields %+v, %v; want %+v", back, err, tf)
	}
	if err := back.UnmarshalBinary(got.Trace[:len(got.Trace)-3]); err == nil {
		t.Fatal("truncated trace fields decoded")
	}
	none := pipeline.TraceFields{Service: "ignored without a trace id"}
	if err := back.UnmarshalBinary(none.AppendBinary(nil)); err != nil || back != (pipeline.TraceFields{}) {
		t.Fatalf("no trace id: %+v, %v", back, err)
	}
}

func TestParseTimestamp(t *testing.T) {
	for _, s := range []string{"2026-11-26T10:00:00.123Z", "2024-02-29T23:59:59.999Z", "2024-02-31T10:00:00.000Z", "2026-11-26T10:00:60.000Z",
		"2026-11-26T10:00:00.12Z", "2026-11-26T10:00:00+01:00", "2026-1x-26T10:00:00.000Z", "0000-01-01T00:00:00.000Z", "", "x"} {
		want, err := time.Parse(time.RFC3339Nano, s)
		got, ok := pipeline.ParseTimestamp(s)
		if ok != (err == nil) || ok && !got.Equal(want) {
			t.Errorf("%q: %v %v, time.Parse %v %v", s, got, ok, want, err)
		}
	}
}

func TestEnvelopeRoundTrip(t *testing.T) {
	in := pipeline.Envelope{ID: "x", Host: "h", Path: "/p/a.log", Offset: 42, Line: []byte(`{"msg":"q\"uote"}`)}
	b := in.AppendJSON(nil)
	var out pipeline.Envelope
	if !pipeline.ParseEnvelope(b, &out) {
		t.Fatalf("not an envelope: %s", b)
	}
	if out.ID != "x" || out.Host != "h" || out.Path != "/p/a.log" || out.Offset != 42 || string(out.Line) != string(in.Line) {
		t.Fatalf("got %+v", out)
	}
	if pipeline.ParseEnvelope([]byte(`{"message":"not an envelope"}`), &out) {
		t.Fatal("plain object taken for an envelope")
	}
}

func TestEncodeRenameIntoObjectOfSameName(t *testing.T) {
	e := &pipeline.Event{Doc: []byte(`{"service":"auth","a":1}`)}
	e.Rename("service", "service.name")
	if got := string(e.Encode(nil)); got != `{"service":{"name":"auth"},"a":1}` {
		t.Fatalf("got %s", got)
	}
	e = &pipeline.Event{Doc: []byte(`{"a":1}`)}
	e.SetString("x", "gone")
	e.Delete("x")
	e.Delete("y.z")
	if got := string(e.Encode(nil)); got != `{"a":1}` {
		t.Fatalf("got %s", got)
	}
}

func TestEnvelopeUnescapesLikeEncodingJSON(t *testing.T) {
	lines := []string{
		`plain`, `{"msg":"quoted \"x\" and \\ backslash"}`, "tab\tnewline\ncr\rnul\x00bell\x07",
		"unicode é 日本 😀", "invalid \xff utf8", `escaped \u00e9 literally`, "</script>&",
	}
	var out pipeline.Envelope
	for _, l := range lines {
		in := pipeline.Envelope{ID: "i\"d", Host: "h\\", Path: "/p", Line: []byte(l)}
		b := in.AppendJSON(nil)
		if !pipeline.ParseEnvelope(b, &out) {
			t.Fatalf("%q: not an envelope", b)
		}
		var ref struct {
			ID, Host, Line string
		}
		if err := json.Unmarshal(b, &ref); err != nil {
			t.Fatal(err)
		}
		if string(out.Line) != ref.Line || out.ID != ref.ID || out.Host != ref.Host {
			t.Fatalf("%q: got %q/%q/%q, encoding/json says %q/%q/%q", l, out.Line, out.ID, out.Host, ref.Line, ref.ID, ref.Host)
		}
	}
	// Escapes other encoders produce (\u sequences, surrogate pairs, \/).
	raw := `{"line":"a\u00e9\ud83d\ude00\/\b\f\u0041 \ud800x"}`
	var ref struct{ Line string }
	json.Unmarshal([]byte(raw), &ref)
	if !pipeline.ParseEnvelope([]byte(raw), &out) || string(out.Line) != ref.Line {
		t.Fatalf("got %q want %q", out.Line, ref.Line)
	}
}

func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain ascii text long enough for words", "0123456\"", "01234567\\x", "abcdefg\x1f", "abcdefgh\x7f\x80", "日本語のテキスト", "tab\there", "ends with é", "\xff\xfe bad", strings.Repeat("a", 17) + "\"" + strings.Repeat("b", 9)} {
		got := pipeline.AppendJSONString(nil, s)
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("%q -> %s: %v", s, got, err)
		}
		want, _ := json.Marshal(s)
		var wantBack string
		json.Unmarshal(want, &wantBack)
		if back != wantBack {
			t.Fatalf("%q: got %q want %q", s, back, wantBack)
		}
	}
}

// A pretty-printed document (as a GELF message may carry) encodes to one
// line, which the bulk API and NDJSON files need.
func TestMultiLineDocumentEncodesToOneLine(t *testing.T) {
	doc := "{\n  \"msg\": \"a\\nb\",\n  \"user\": {\n    \"id\": 1\n  },\r\n  \"n\": [1,\n2]\n}"
	var e pipeline.Event
	if !e.SetObject([]byte(doc)) {
		t.Fatal("valid document refused")
	}
	e.Rename("msg", "message")
	out := e.Encode(nil)
	if bytes.ContainsAny(out, "\n") {
		t.Fatalf("encoded document spans lines: %q", out)
	}
	if got := gjson.GetBytes(out, "message").String(); got != "a\nb" {
		t.Fatalf("message = %q", got)
	}
	if gjson.GetBytes(out, "user.id").Int() != 1 || gjson.GetBytes(out, "n.1").Int() != 2 {
		t.Fatalf("values lost: %s", out)
	}
}

func TestAppendTimestampMatchesTimeFormat(t *testing.T) {
	for _, ts := range []time.Time{
		time.Date(2026, 11, 25, 23, 59, 59, 999_999_999, time.UTC),
		time.Date(1999, 1, 2, 3, 4, 5, 6_000_000, time.FixedZone("x", 5*3600)),
		time.Unix(0, 0), time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC), time.Date(10001, 1, 1, 0, 0, 0, 0, time.UTC),
	} {
		want := ts.UTC().Format("2006-01-02T15:04:05.000Z")
		if got := string(pipeline.AppendTimestamp(nil, ts)); got != want {
			t.Errorf("got %s want %s", got, want)
		}
	}
}

func TestTracePathsAreFound(t *testing.T) {
	// Every path TraceFields reads is found among the edits (a typo in
	// the switch would leave a field to the slow path, or empty).
	var e pipeline.Event
	e.SetString("trace.id", "t")
	e.SetString("@timestamp", "2026-12-06T04:00:00.000Z")
	e.SetString("service.name", "s")
	e.SetString("log.level", "warn")
	e.SetInt("http.response.status_code", 503)
	e.SetString("event.dataset", pipeline.GatewayDataset)
	e.SetString("http.request.method", "GET")
	e.SetString("url.path", "/p")
	e.SetString("source.ip", "::1")
	e.SetInt("event.duration", 7)
	got := e.TraceFields()
	want := pipeline.TraceFields{TraceID: "t", Time: time.Date(2026, 12, 6, 4, 0, 0, 0, time.UTC).UnixNano(), Service: "s", Level: "warn", Status: 503,
		Dataset: pipeline.GatewayDataset, Method: "GET", Path: "/p", Client: "::1", Duration: 7}
	if got != want {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
}

// Ids are what make a replay overwrite instead of duplicate: the same
// origin must give the same id in every version (a shipper upgraded while
// lines are unacknowledged sends them again under the ids they had).
func TestEventIDIsStable(t *testing.T) {
	if got := pipeline.EventID("h", "src", 42, 7, []byte("line é")); got != "yA5GRP4osOUnUSzDHpIH6AwyEAg" {
		t.Fatalf("EventID changed: %s", got)
	}
	if got := pipeline.EventID("", "", 0, 0, nil); got != "YNqjpffb-iAPjIKEDs9bQmQLcPM" {
		t.Fatalf("EventID changed: %s", got)
	}
}
