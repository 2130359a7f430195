package elasticsearch_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/logweave/logweave/internal/estest"
	"github.com/logweave/logweave/outputs/elasticsearch"
	"github.com/logweave/logweave/pipeline"
	"github.com/tidwall/gjson"
)

func newOutput(t *testing.T, url string) *elasticsearch.Output {
	t.Helper()
	cfg := elasticsearch.DefaultConfig()
	cfg.URLs = []string{url}
	cfg.RetryInitial = 5 * time.Millisecond
	cfg.RetryMax = 20 * time.Millisecond
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
