package pipeline

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// FuzzNewObjectMatchesObject: the fast path for objects made only of edits
// writes exactly what the general one does.
func FuzzNewObjectMatchesObject(f *testing.F) {
	f.Add("level=1;file.path=2;offset=3")
	f.Add("a=1;a.b=2;-a;c.d.e=3;c=4")
	f.Add("x.y=1;-x.y;x.z=2;x=3")
	f.Fuzz(func(t *testing.T, ops string) {
		var edits []edit
		for _, op := range strings.Split(ops, ";") {
			if len(edits) == 64 {
				break
			}
			del := strings.HasPrefix(op, "-")
			path, val, _ := strings.Cut(strings.TrimPrefix(op, "-"), "=")
			if path == "" || strings.HasPrefix(path, ".") || strings.HasSuffix(path, ".") || strings.Contains(path, "..") {
				continue
			}
			v := []byte(`"` + strings.ReplaceAll(strings.ReplaceAll(val, `\`, ""), `"`, "") + `"`)
			if del {
				v = nil
			}
			edits = append(edits, edit{path: path, value: v})
		}
		var a, b encoder
		a.object(nil, edits)
		b.newObject(edits)
		if string(a.dst) != string(b.dst) {
			t.Fatalf("edits %v:\nobject    %s\nnewObject %s", edits, a.dst, b.dst)
		}
	})
}

// FuzzMembersMatchesGJSON: the top-level scanner finds the same keys and
// raw values as gjson on any valid JSON object.
func FuzzMembersMatchesGJSON(f *testing.F) {
	f.Add(`{"a":1,"b":"x\"y","c":{"d":[1,"]"]},"e\\"":"\\\\","f":null}`)
	f.Add(`{ "k" : "v" , "n" : -1.5e3 , "t" : true }`)
	f.Add(`{"":"","\u00e9":"\ud83d\ude00"}`)
	f.Fuzz(func(t *testing.T, doc string) {
		if !gjson.Valid(doc) || !gjson.Parse(doc).IsObject() {
			return
		}
		got := members(nil, []byte(doc))
		i := 0
		gjson.Parse(doc).ForEach(func(k, v gjson.Result) bool {
			if i >= len(got) {
				t.Fatalf("%s: scanner stopped after %d members", doc, i)
			}
			if got[i].Key != k.String() || string(got[i].Val) != v.Raw {
				t.Fatalf("%s: member %d is %q=%s, gjson says %q=%s", doc, i, got[i].Key, got[i].Val, k.String(), v.Raw)
			}
			i++
			return true
		})
		if i != len(got) {
			t.Fatalf("%s: scanner found %d members, gjson %d", doc, len(got), i)
		}
	})
}
