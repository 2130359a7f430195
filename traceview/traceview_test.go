package traceview_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/logweave/logweave/correlate"
	"github.com/logweave/logweave/internal/estest"
	"github.com/logweave/logweave/outputs/elasticsearch"
	"github.com/logweave/logweave/pipeline"
	"github.com/logweave/logweave/traceview"
)

var update = flag.Bool("update", false, "rewrite the golden files")

const id = "7f3c9a1e2b4d4e6f8a0b1c2d3e4f5a6b"

// events of one request: the gateway's access log (its span covers the
// request) and three services, one of which fails.
func events() [][]byte {
	t0 := time.Date(2026, 11, 26, 10, 15, 0, 0, time.UTC)
	at := func(ms float64) string {
		return t0.Add(time.Duration(ms * float64(time.Millisecond))).Format("2006-01-02T15:04:05.000Z")
	}
	ev := func(n int, ms float64, service, level, msg, extra string) []byte {
		return []byte(fmt.Sprintf(`{"@timestamp":%q,"service":{"name":%q},"log":{"level":%q},"message":%q,"trace":{"id":%q},"event":{"id":"e%d"%s}}`,
			at(ms), service, level, msg, id, n, extra))
	}
	return [][]byte{
		ev(1, 1, "orders", "info", "order received", ""),
		ev(2, 3, "inventory", "debug", "reserved 2 items", ""),
		ev(3, 5, "payments", "info", "charging card", ""),
		ev(4, 41, "payments", "error", "card declined: insufficient funds", ""),
		ev(5, 43, "orders", "warning", "order failed", ""),
		[]byte(fmt.Sprintf(`{"@timestamp":%q,"service":{"name":"nginx"},"log":{"level":"info"},"message":"203.0.113.7 - - \"POST /api/orders HTTP/1.1\" 502","trace":{"id":%q},"event":{"id":"e6","dataset":"nginx.access","duration":45000000},"http":{"request":{"method":"POST"},"response":{"status_code":502}},"url":{"path":"/api/orders"},"source":{"ip":"203.0.113.7"}}`, at(45), id)),
	}
}

func traceDoc(t *testing.T) []byte {
	c := correlate.New(correlate.Config{Window: time.Second})
	for _, e := range events() {
		c.Add(e, time.Now())
	}
	tr := c.Flush()
	if len(tr) != 1 {
		t.Fatalf("%d traces", len(tr))
	}
	return tr[0].AppendJSON(nil)
}

// The waterfall of a fixed trace is what testdata/trace.golden holds
// (go test ./traceview -update rewrites it).
func TestRenderMatchesGolden(t *testing.T) {
	v := &traceview.View{Trace: traceDoc(t), Events: events()}
	var out bytes.Buffer
	if err := v.Render(&out); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "trace.golden")
	if *update {
		os.WriteFile(golden, out.Bytes(), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if out.String() != string(want) {
		t.Fatalf("waterfall differs from %s:\n%s", golden, out.String())
	}
}

// From the file output: events of the request from the logs files (a
// replayed line once), the last version of its trace from the traces files.
func TestFromFiles(t *testing.T) {
	dir := t.TempDir()
	var logs []byte
	for _, e := range events() {
		logs = append(append(logs, e...), '\n')
	}
	logs = append(logs, events()[0]...) // replayed after a crash
	logs = append(logs, "\n"+`{"@timestamp":"2026-11-26T10:15:00.000Z","message":"another request","trace":{"id":"other"}}`+"\n"...)
	os.WriteFile(filepath.Join(dir, "logs-2026.11.26.ndjson"), logs, 0o644)
	old := `{"trace":{"id":"` + id + `"},"event_count":2}`
	os.WriteFile(filepath.Join(dir, "traces-2026.11.26.ndjson"), []byte(old+"\n"+string(traceDoc(t))+"\n"), 0o644)
	v, err := traceview.FromFiles(dir, "logs-%{+yyyy.MM.dd}", "traces-%{+yyyy.MM.dd}", id)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Events) != 6 || gjson.GetBytes(v.Trace, "event_count").Int() != 6 {
		t.Fatalf("%d events, trace %s", len(v.Events), v.Trace)
	}
	if gjson.GetBytes(v.Events[0], "service.name").String() != "orders" || gjson.GetBytes(v.Events[5], "service.name").String() != "nginx" {
		t.Fatal("events not in time order")
	}
	if _, err := traceview.FromFiles(dir, "logs-%{+yyyy.MM.dd}", "traces-%{+yyyy.MM.dd}", "nope"); err != traceview.ErrNotFound {
		t.Fatalf("unknown id: %v", err)
	}
}

// From Elasticsearch (the stand-in, or ELASTICSEARCH_URL's cluster).
func TestFromElasticsearch(t *testing.T) {
	es := estest.New()
	defer es.Close()
	cfg := elasticsearch.DefaultConfig()
	cfg.URLs = []string{es.URL}
	o, err := elasticsearch.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	var recs []pipeline.Record
	for i, e := range events() {
		recs = append(recs, pipeline.Record{ID: fmt.Sprintf("e%d", i), Index: "logs-2026.11.26", Doc: e})
	}
	recs = append(recs, pipeline.Record{ID: id, Index: "traces-2026.11.26", Doc: traceDoc(t)})
	if err := o.Write(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	v, err := traceview.FromElasticsearch(context.Background(), o, "logs-%{+yyyy.MM.dd}", "traces-%{+yyyy.MM.dd}", id)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	v.WriteJSON(&out)
	if gjson.GetBytes(out.Bytes(), "events.#").Int() != 6 || gjson.GetBytes(out.Bytes(), "trace.services.0").String() != "nginx" ||
		gjson.GetBytes(out.Bytes(), "events.0.service.name").String() != "orders" {
		t.Fatalf("got %s", out.Bytes())
	}
}

func TestListTraces(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	var lines []string
	for i := 0; i < 30; i++ {
		start := now.Add(-time.Duration(i) * 10 * time.Minute)
		lines = append(lines, fmt.Sprintf(`{"trace":{"id":"t%02d"},"@timestamp":%q,"duration_ms":%d,"event_count":3,"error":%v,"services":["nginx","orders"]}`,
			i, start.Format("2006-01-02T15:04:05.000Z"), (i*7)%31, i%4 == 0))
	}
	// t00 rewritten by a late event: the last version counts.
	lines = append(lines, fmt.Sprintf(`{"trace":{"id":"t00"},"@timestamp":%q,"duration_ms":99,"event_count":5,"error":false,"services":["nginx"]}`, now.Format("2006-01-02T15:04:05.000Z")))
	os.WriteFile(filepath.Join(dir, "traces-2026.11.26.ndjson"), []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	ids := func(docs [][]byte) string {
		var s []string
		for _, d := range docs {
			s = append(s, gjson.GetBytes(d, "trace.id").String())
		}
		return strings.Join(s, " ")
	}
	got, _ := traceview.ListFromFiles(dir, "traces-%{+yyyy.MM.dd}", traceview.ListOptions{Errors: true, Since: time.Hour, Now: now})
	if ids(got) != "t04" { // t00 no longer errs; t04 is 40 min old; t08 is 80
		t.Fatalf("--errors --since 1h: %s", ids(got))
	}
	got, _ = traceview.ListFromFiles(dir, "traces-%{+yyyy.MM.dd}", traceview.ListOptions{Slowest: 3, Now: now})
	if ids(got) != "t00 t22 t13" { // 99 ms, then 30 (22*7 mod 31) and 29 (13*7 mod 31)
		t.Fatalf("--slowest 3: %s", ids(got))
	}
	var out bytes.Buffer
	traceview.RenderList(&out, got)
	if !strings.Contains(out.String(), "t00") || strings.Count(out.String(), "\n") != 4 {
		t.Fatalf("list:\n%s", out.String())
	}
}
