package elasticsearch_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/logweave/logweave/internal/estest"
	"github.com/logweave/logweave/outputs/elasticsearch"
	"github.com/logweave/logweave/pipeline"
	"github.com/tidwall/gjson"
)

func newOutput(t *testing.T, url string, edits ...func(*elasticsearch.Config)) *elasticsearch.Output {
	t.Helper()
	cfg := elasticsearch.DefaultConfig()
	cfg.URLs = []string{url}
	cfg.RetryInitial = 5 * time.Millisecond
	cfg.RetryMax = 20 * time.Millisecond
	for _, edit := range edits {
		if edit != nil {
			edit(&cfg)
		}
	}
	if err := cfg.Validate("elasticsearch"); err != nil {
		t.Fatal(err)
	}
	o, err := elasticsearch.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func records(n int) []pipeline.Record {
	recs := make([]pipeline.Record, n)
	for i := range recs {
		recs[i] = pipeline.Record{
			ID:    fmt.Sprintf("id-%d", i),
			Index: "logs-2026.11.26",
			Doc:   []byte(fmt.Sprintf(`{"@timestamp":"2026-11-26T00:00:00.000Z","message":"m%d","n":%d}`, i, i)),
		}
	}
	return recs
}

// target is a real cluster when ELASTICSEARCH_URL is set, else the stand-in.
func target(t *testing.T) string {
	if u := os.Getenv("ELASTICSEARCH_URL"); u != "" {
		return strings.TrimRight(u, "/")
	}
	srv := estest.New()
	t.Cleanup(srv.Close)
	return srv.URL
}

func getJSON(t *testing.T, method, url string) gjson.Result {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return gjson.ParseBytes(body)
}

// Runs against a real Elasticsearch when ELASTICSEARCH_URL is set.
func TestWriteIndexesEveryRecordByID(t *testing.T) {
	url := target(t)
	o := newOutput(t, url)
	index := fmt.Sprintf("logweave-test-%d-2026.11.26", time.Now().UnixNano())
	recs := records(500)
	for i := range recs {
		recs[i].Index = index
	}
	for round := 0; round < 2; round++ { // the replay overwrites
		if err := o.Write(context.Background(), recs); err != nil {
			t.Fatal(err)
		}
	}
	getJSON(t, http.MethodPost, url+"/"+index+"/_refresh")
	if n := getJSON(t, http.MethodGet, url+"/"+index+"/_count").Get("count").Int(); n != 500 {
		t.Fatalf("got %d docs, want 500", n)
	}
	doc := getJSON(t, http.MethodGet, url+"/"+index+"/_doc/id-7")
	if got := doc.Get("_source.message").String(); got != "m7" {
		t.Fatalf("doc id-7: %s", doc.Raw)
	}
	if os.Getenv("ELASTICSEARCH_URL") != "" {
		getJSON(t, http.MethodDelete, url+"/"+index)
	}
}

func TestWriteRetriesItem429AndDeadLettersMappingErrors(t *testing.T) {
	srv := estest.New()
	defer srv.Close()
	var throttled atomic.Int32
	srv.SetFault(func(index, id string, doc []byte) (int, string, string) {
		if strings.HasPrefix(index, "logweave-deadletter") {
			return 0, "", ""
		}
		if id == "id-3" {
			return 400, "mapper_parsing_exception", "failed to parse field [n] of type [long]"
		}
		if strings.HasSuffix(id, "5") && throttled.Add(1) <= 20 {
			return 429, "es_rejected_execution_exception", "rejected execution of coordinating operation"
		}
		return 0, "", ""
	})
	o := newOutput(t, srv.URL)
	if err := o.Write(context.Background(), records(100)); err != nil {
		t.Fatal(err)
	}
	if n := len(srv.Docs("logs-2026.11.26")); n != 99 {
		t.Fatalf("got %d docs, want 99 (all but the rejected one)", n)
	}
	if throttled.Load() <= 10 {
		t.Fatalf("429s were not retried: %d", throttled.Load())
	}
	dlq := srv.Docs("logweave-deadletter-" + time.Now().UTC().Format("2006.01.02"))
	d, ok := dlq["id-3"]
	if !ok {
		t.Fatalf("rejected doc not dead-lettered; indices %v", srv.Indices())
	}
	if gjson.GetBytes(d, "error.type").String() != "mapper_parsing_exception" ||
		gjson.GetBytes(d, "logweave.target_index").String() != "logs-2026.11.26" ||
		gjson.Get(gjson.GetBytes(d, "event.original").String(), "message").String() != "m3" {
		t.Fatalf("dead-letter doc: %s", d)
	}
	// Its values are indexed (event.original is not): erase finds it by one.
	if vals := gjson.GetBytes(d, "logweave.values").Array(); len(vals) == 0 || !slices.ContainsFunc(vals, func(v gjson.Result) bool { return v.String() == "m3" }) {
		t.Fatalf("logweave.values: %s", d)
	}
}

func TestWriteWaitsOutAnOutage(t *testing.T) {
	srv := estest.New()
	defer srv.Close()
	srv.Down.Store(503)
	o := newOutput(t, srv.URL)
	done := make(chan error, 1)
	go func() { done <- o.Write(context.Background(), records(50)) }()
	time.Sleep(100 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("Write returned during the outage: %v", err)
	default:
	}
	srv.Down.Store(0)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Write did not finish after the outage ended")
	}
	if n := srv.Count("logs-*"); n != 50 {
		t.Fatalf("got %d docs", n)
	}
}

func TestWriteStopsWithContext(t *testing.T) {
	srv := estest.New()
	defer srv.Close()
	srv.Down.Store(503)
	o := newOutput(t, srv.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := o.Write(ctx, records(5)); err == nil {
		t.Fatal("want an error when the context ends before the cluster is back")
	}
}

// After breaker_failures failed attempts the breaker opens: no request
// reaches the cluster during the cooldown; then one probe, and success
// closes it.
func TestBreakerStopsRequestsWhileOpen(t *testing.T) {
	var requests atomic.Int32
	var down atomic.Bool
	down.Store(true)
	srv := estest.New()
	defer srv.Close()
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if down.Load() {
			w.Header().Set("X-Elastic-Product", "Elasticsearch")
			http.Error(w, `{"error":"down"}`, 503)
			return
		}
		srv.Config.Handler.ServeHTTP(w, r)
	}))
	defer front.Close()
	cfg := elasticsearch.DefaultConfig()
	cfg.URLs = []string{front.URL}
	cfg.RetryInitial, cfg.RetryMax = time.Millisecond, 2*time.Millisecond
	cfg.BreakerFailures, cfg.BreakerCooldown = 3, 600*time.Millisecond
	o, err := elasticsearch.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- o.Write(context.Background(), records(10)) }()
	deadline := time.Now().Add(5 * time.Second)
	for open, _ := o.BreakerOpen(); !open; open, _ = o.BreakerOpen() {
		if time.Now().After(deadline) {
			t.Fatal("breaker did not open")
		}
		time.Sleep(5 * time.Millisecond)
	}
	atOpen := requests.Load()
	time.Sleep(400 * time.Millisecond) // inside the cooldown
	if n := requests.Load(); n != atOpen {
		t.Fatalf("%d requests reached the cluster while the breaker was open", n-atOpen)
	}
	down.Store(false)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Write did not finish after the cluster came back")
	}
	if open, _ := o.BreakerOpen(); open {
		t.Fatal("breaker still open after a successful probe")
	}
	if n := srv.Count("logs-*"); n != 10 {
		t.Fatalf("%d documents indexed", n)
	}
}

// Conditional writes (optimistic concurrency, as trace documents use it):
// create only when absent, overwrite only at the version read; a failed
// condition comes back in a ConflictError, is neither retried nor
// dead-lettered, and the other records of the batch are written.
func TestConditionalWritesReportConflicts(t *testing.T) {
	url := target(t)
	o := newOutput(t, url)
	ctx := context.Background()
	suffix := fmt.Sprint(time.Now().UnixNano())
	traces, logs := "logweave-test-traces-"+suffix, "logweave-test-logs-"+suffix
	doc := func(v string) []byte { return []byte(`{"trace":{"id":"t1"},"v":"` + v + `"}`) }
	create := pipeline.Record{ID: "t1", Index: traces, Doc: doc("a"), Cond: &pipeline.Condition{Create: true}}
	if err := o.Write(ctx, []pipeline.Record{create}); err != nil {
		t.Fatal(err)
	}
	getJSON(t, http.MethodPost, url+"/"+traces+"/_refresh")
	found, err := o.Lookup(ctx, traces, "trace.id", []string{"t1"})
	if err != nil || found["t1"].Index != traces || found["t1"].PrimaryTerm == 0 {
		t.Fatalf("read back: %+v %v", found, err)
	}
	read := found["t1"]

	// Someone else created it first; and someone else changed it since it
	// was read. The plain record beside them is written.
	again := create
	again.Doc = doc("b")
	update := pipeline.Record{ID: "t1", Index: read.Index, Doc: doc("c"), Cond: &pipeline.Condition{SeqNo: read.SeqNo, PrimaryTerm: read.PrimaryTerm}}
	if err := o.Write(ctx, []pipeline.Record{update}); err != nil {
		t.Fatalf("update at the version read: %v", err)
	}
	plain := pipeline.Record{ID: "other", Index: logs, Doc: []byte(`{"m":1}`)}
	err = o.Write(ctx, []pipeline.Record{again, update, plain})
	var conflict *pipeline.ConflictError
	if !errors.As(err, &conflict) || len(conflict.Records) != 2 || string(conflict.Records[0].Doc) != string(doc("b")) {
		t.Fatalf("want both conditional records back as conflicts, got %v", err)
	}
	if got := getJSON(t, http.MethodGet, url+"/"+traces+"/_doc/t1").Get("_source.v").String(); got != "c" {
		t.Errorf("document v=%q, want the update made at the version read", got)
	}
	if !getJSON(t, http.MethodGet, url+"/"+logs+"/_doc/other").Get("found").Bool() {
		t.Error("the plain record beside the conflicts was not written")
	}
	getJSON(t, http.MethodPost, url+"/logweave-deadletter-*/_refresh")
	if n := getJSON(t, http.MethodGet, url+"/logweave-deadletter-*/_count").Get("count").Int(); n != 0 {
		t.Errorf("%d conflicts dead-lettered", n)
	}
}
