package pipeline

import (
	"strings"
	"testing"
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
			dup := false
			for _, e := range edits {
				dup = dup || e.path == path
			}
			if dup {
				continue // Set never leaves two edits of one path
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
