package kibana_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/logweave/logweave/deploy/kibana"
)

// The saved objects are what Kibana's import takes: one object per line,
// unique ids, every reference to an object of the file (or of a type the
// file holds), and the JSON Kibana keeps as strings is itself valid.
func TestSavedObjectsAreConsistent(t *testing.T) {
	objs := kibana.Objects("logs-", "traces-")
	byID := map[string]string{}
	var lines []gjson.Result
	sc := bufio.NewScanner(bytes.NewReader(objs))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if !json.Valid(sc.Bytes()) {
			t.Fatalf("not JSON: %s", sc.Bytes())
		}
		o := gjson.ParseBytes(bytes.Clone(sc.Bytes()))
		id, typ := o.Get("id").String(), o.Get("type").String()
		if id == "" || typ == "" || byID[id] != "" {
			t.Fatalf("object without id/type or twice: %s %s", id, typ)
		}
		byID[id] = typ
		lines = append(lines, o)
	}
	for _, want := range []string{"index-pattern", "search", "visualization", "dashboard"} {
		found := false
		for _, typ := range byID {
			found = found || typ == want
		}
		if !found {
			t.Fatalf("no %s object", want)
		}
	}
	for _, o := range lines {
		for _, r := range o.Get("references").Array() {
			if byID[r.Get("id").String()] != r.Get("type").String() {
				t.Fatalf("%s refers to %s %s, not in the file", o.Get("id"), r.Get("type"), r.Get("id"))
			}
		}
		for _, path := range []string{"attributes.kibanaSavedObjectMeta.searchSourceJSON", "attributes.panelsJSON", "attributes.visState", "attributes.optionsJSON"} {
			if v := o.Get(path); v.Exists() && !json.Valid([]byte(v.String())) {
				t.Fatalf("%s: %s is not JSON", o.Get("id"), path)
			}
		}
		if o.Get("type").String() == "dashboard" {
			for _, p := range gjson.Parse(o.Get("attributes.panelsJSON").String()).Array() {
				name := p.Get("panelIndex").String() + ":" + p.Get("panelRefName").String()
				if !strings.Contains(o.Get("references").Raw, `"`+name+`"`) {
					t.Fatalf("panel %s has no reference", name)
				}
			}
		}
	}
	rt := gjson.GetBytes(objs, `..#(id=="logweave-request-trace").attributes`)
	if rt.Get("title").String() != "Request trace" || rt.Get("columns").Raw != `["service.name","log.level","message"]` ||
		!strings.Contains(rt.Get("kibanaSavedObjectMeta.searchSourceJSON").String(), "trace.id") {
		t.Fatalf("Request trace search: %s", rt.Raw)
	}
	if other := kibana.Objects("microservices-", "req-"); !bytes.Contains(other, []byte(`"title":"microservices-*"`)) || !bytes.Contains(other, []byte(`"title":"req-*"`)) {
		t.Fatal("data views not pointed at the configured indices")
	}
}

// Import posts the file to the saved objects API as Kibana wants it.
func TestImport(t *testing.T) {
	var got []byte
	kb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/saved_objects/_import" || r.URL.Query().Get("overwrite") != "true" || r.Header.Get("kbn-xsrf") == "" {
			http.Error(w, "bad request "+r.URL.String(), 400)
			return
		}
		if u, p, ok := r.BasicAuth(); !ok || u != "elastic" || p != "s3cret" {
			http.Error(w, "unauthorized", 401)
			return
		}
		f, _, err := r.FormFile("file")
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		got, _ = io.ReadAll(f)
		io.WriteString(w, `{"success":true,"successCount":8,"errors":[]}`)
	}))
	defer kb.Close()
	objs := kibana.Objects("logs-", "traces-")
	if err := kibana.Import(context.Background(), kibana.Config{URL: kb.URL, Username: "elastic", Password: "s3cret"}, objs); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, objs) {
		t.Fatal("Kibana got something else")
	}
	refused := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"success":false,"successCount":7,"errors":[{"id":"logweave-requests","error":{"type":"missing_references"}}]}`)
	}))
	defer refused.Close()
	if err := kibana.Import(context.Background(), kibana.Config{URL: refused.URL}, objs); err == nil || !strings.Contains(err.Error(), "missing_references") {
		t.Fatalf("a partial import was not reported: %v", err)
	}
}
