package pipeline_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/logweave/logweave/pipeline"
	"github.com/tidwall/gjson"
)

func noDuplicateKeys(r gjson.Result) (string, bool) {
	if r.IsArray() {
		for _, v := range r.Array() {
			if k, dup := noDuplicateKeys(v); dup {
				return k, true
			}
		}
		return "", false
	}
	if !r.IsObject() {
		return "", false
	}
	seen := map[string]bool{}
	var dupKey string
	r.ForEach(func(k, v gjson.Result) bool {
		if seen[k.String()] {
			dupKey = k.String()
			return false
		}
		seen[k.String()] = true
		if d, dup := noDuplicateKeys(v); dup {
			dupKey = d
			return false
		}
		return true
	})
	return dupKey, dupKey != ""
}

// FuzzEncode checks that any edits on any JSON object encode to valid JSON
// that Elasticsearch would take (no duplicate keys).
func FuzzEncode(f *testing.F) {
	f.Add(`{"a":1,"log":"x","msg":"m","b":{"c":[1,{"d":2}]}}`, "log.level=\"info\";msg>message;b.c.d=3;-a")
	f.Add(`{"log.level":"x","http":{"request":{"id":"1"}}}`, "log.level=\"y\";http.request.id=\"2\";trace.id=\"2\"")
	f.Add(`{ "k" : "v\"\\" , "n" : null }`, "k.z=true;n=1;-k.z")
	f.Add(`{"tags":["a"],"x":{"y":{"z":1}}}`, "x.y.z.w=1;x=2;service>service.name")
	f.Fuzz(func(t *testing.T, doc, ops string) {
		if !gjson.Valid(doc) || !gjson.Parse(doc).IsObject() {
			return
		}
		if _, dup := noDuplicateKeys(gjson.Parse(doc)); dup {
			return // already invalid for Elasticsearch
		}
		e := &pipeline.Event{}
		e.SetDoc([]byte(doc))
		for _, op := range strings.Split(ops, ";") {
			switch {
			case strings.HasPrefix(op, "-"):
				e.Delete(op[1:])
			case strings.Contains(op, ">"):
				from, to, _ := strings.Cut(op, ">")
				e.Rename(from, to)
			case strings.Contains(op, "="):
				path, val, _ := strings.Cut(op, "=")
				if path == "" || strings.HasPrefix(path, ".") || strings.HasSuffix(path, ".") || strings.Contains(path, "..") || !json.Valid([]byte(val)) {
					continue
				}
				e.Set(path, []byte(val))
			}
		}
		out := e.Encode(nil)
		if !json.Valid(out) {
			t.Fatalf("invalid JSON %s from %s with %q", out, doc, ops)
		}
		if k, dup := noDuplicateKeys(gjson.ParseBytes(out)); dup {
			t.Fatalf("duplicate key %q in %s from %s with %q", k, out, doc, ops)
		}
	})
}

func FuzzParseEnvelope(f *testing.F) {
	f.Add([]byte(`{"id":"x","ts":"2026-11-26T00:00:00Z","host":"h","path":"/p","offset":3,"line":"a\"b\\u00e9"}`))
	f.Add([]byte(`{"line":`))
	f.Add([]byte(`{"line":"\ud83d"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var e pipeline.Envelope
		pipeline.ParseEnvelope(b, &e)
		// Whatever a line holds, it survives the round trip.
		in := pipeline.Envelope{ID: "i", Line: b}
		var out pipeline.Envelope
		if !pipeline.ParseEnvelope(in.AppendJSON(nil), &out) {
			t.Fatal("own envelope not recognised")
		}
		// Invalid UTF-8 becomes U+FFFD per byte, as encoding/json does.
		ref, _ := json.Marshal(string(b))
		var want string
		json.Unmarshal(ref, &want)
		if string(out.Line) != want {
			t.Fatalf("line %q came back as %q", want, out.Line)
		}
	})
}

// FuzzParseObject checks the one-pass validator against encoding/json and
// its members against the members scanner's.
func FuzzParseObject(f *testing.F) {
	for _, s := range []string{
		`{"a":1,"log":"x","msg":"m","b":{"c":[1,{"d":2}]}}`, ` {"k\"ey":"v\u00e9\\","n":null,"t":true,"f":false} `,
		`{"n":-0.5e+10,"m":[],"o":{},"s":"0123456789abcdef\n"}`, `{"a":01}`, `{"a":1,}`, `[1]`, `{"a":"\x"}`,
		`{"a":[1,2,]}`, `{"a":1}}`, `{"a":tru}`, `{"a":"` + "\x01" + `"}`, `{"a":1.}`, `{"a":-}`, `{"a" 1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, ok := pipeline.ParseObject(nil, b)
		trimmed := strings.TrimLeft(string(b), " \t\r\n")
		want := json.Valid(b) && strings.HasPrefix(trimmed, "{")
		if ok != want {
			t.Fatalf("ParseObject(%q) = %v, encoding/json says %v", b, ok, want)
		}
		if !ok {
			return
		}
		ref := pipeline.Members(b)
		if len(got) != len(ref) {
			t.Fatalf("%q: %d members, scanner finds %d", b, len(got), len(ref))
		}
		for i := range got {
			if got[i].Key != ref[i].Key || string(got[i].RawKey) != string(ref[i].RawKey) || string(got[i].Val) != string(ref[i].Val) {
				t.Fatalf("%q: member %d is %q=%q, scanner has %q=%q", b, i, got[i].Key, got[i].Val, ref[i].Key, ref[i].Val)
			}
		}
	})
}
