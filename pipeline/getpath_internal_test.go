package pipeline

import (
	"testing"

	"github.com/tidwall/gjson"
)

// getPath finds what gjson finds, for the dotted paths Get gives it.
func FuzzGetPathIsGJSON(f *testing.F) {
	for _, s := range []struct{ doc, path string }{
		{`{"response":{"status_code":200},"request":{"method":"GET"}}`, "response.status_code"},
		{`{"method":"POST","path":"/api/cart","status":200}`, "response.status_code"},
		{`{"a":1,"a":{"b":2}}`, "a.b"},
		{`{"a":{"b":2},"a":{"b":3}}`, "a.b"},
		{`{"a":[{"b":1},{"b":2}]}`, "a.1.b"},
		{`{"a":{"b\u002ec":1,"b":{"c":2}}}`, "a.b"},
		{`{"k\"ey":{"x":"y"}}`, `k"ey.x`},
		{`{ "a" : { "b" : "s p a c e" } }`, "a.b"},
		{`{"a":{"b":null}}`, "a.b"},
		{`{"a":{"b":{}}}`, "a.b.c"},
		{`{"a":"x"}`, "a.b"},
		{`{}`, "a"},
	} {
		f.Add(s.doc, s.path)
	}
	f.Fuzz(func(t *testing.T, doc, path string) {
		if !gjson.Valid(doc) || len(doc) == 0 || doc[0] != '{' || path == "" {
			return
		}
		want := gjson.Get(doc, escapePath(path))
		got := getPath([]byte(doc), path)
		if got.Exists() != want.Exists() || got.Raw != want.Raw || got.Type != want.Type {
			t.Fatalf("getPath(%s, %q) = %v %q, gjson %v %q", doc, path, got.Exists(), got.Raw, want.Exists(), want.Raw)
		}
	})
}
