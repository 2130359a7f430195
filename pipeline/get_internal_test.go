package pipeline

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// getUnguarded is Get in the document as it was before a nested path whose
// next key is not in the object's text was ended early: the reference.
func getUnguarded(e *Event, path string) gjson.Result {
	top := members(nil, e.Doc)
	head, rest, nested := strings.Cut(path, ".")
	for i := range top {
		m := &top[i]
		if m.Key == path {
			return gjson.Parse(b2s(m.Val))
		}
		if nested && m.Key == head && len(m.Val) > 0 && m.Val[0] == '{' {
			r := getPath(m.Val, rest)
			if !r.Exists() && strings.IndexByte(rest, '.') >= 0 && mayHoldKey(b2s(m.Val), rest) {
				r = gjson.GetBytes(m.Val, escapeAll(rest))
			}
			if r.Exists() {
				return r
			}
		}
	}
	return gjson.Result{}
}

func FuzzGetIsUnguardedGet(f *testing.F) {
	f.Add(`{"http":{"method":"GET","status":200}}`, "http.response.status_code")
	f.Add(`{"http":{"request.id":"x"},"http.request.id":"y"}`, "http.request.id")
	f.Add(`{"http":{"re\u0071uest":{"id":"esc"}}}`, "http.request.id")
	f.Add(`{"a":{"b":[{"c":1}]}}`, "a.b.0.c")
	f.Add(`{"a":{"b":{"c":"x"}},"a":{"b":{"d":2}}}`, "a.b.d")
	f.Fuzz(func(t *testing.T, doc, path string) {
		if !gjson.Valid(doc) || !gjson.Parse(doc).IsObject() {
			return
		}
		e := &Event{}
		e.SetDoc([]byte(doc))
		got, want := e.Get(path), getUnguarded(e, path)
		if got.Raw != want.Raw || got.Type != want.Type || got.String() != want.String() {
			t.Fatalf("Get(%q) in %s: %q (%v), want %q (%v)", path, doc, got.Raw, got.Type, want.Raw, want.Type)
		}
	})
}
