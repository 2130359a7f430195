package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/logweave/logweave/collector"
	"github.com/logweave/logweave/internal/estest"
)

// Requests through the gateway and three services, each logging to its own
// file with the X-Request-ID, tailed by the shipper: the collector writes
// one trace document per request, under the request id, with the services
// in order, a span each, the error flag and the gateway's entry request.
func TestTracesFromFilesThroughShipperAndCollector(t *testing.T) {
	dir := t.TempDir()
	es := estest.New()
	defer es.Close()
	col := startCollector(t, dir, es.URL, func(c *collector.Config) { c.Correlation.Window = 500 * time.Millisecond })
	defer stopCollector(t, col)
	logs := filepath.Join(dir, "logs")
	os.MkdirAll(logs, 0o755)
	sh := startShipper(t, dir, col.Addr(), filepath.Join(logs, "*.log"))
	defer sh.stop(t)

	files := map[string]*os.File{}
	for _, name := range []string{"nginx", "orders", "payments", "inventory"} {
		f, err := os.Create(filepath.Join(logs, name+".log"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		files[name] = f
	}
	const requests = 200
	base := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	ts := func(r, ms int) string {
		return base.Add(time.Duration(r)*20*time.Millisecond + time.Duration(ms)*time.Millisecond).Format(time.RFC3339Nano)
	}
	for r := 0; r < requests; r++ {
		id := fmt.Sprintf("%032x", r+1)
		fmt.Fprintf(files["orders"], `{"time":%q,"level":"info","service":"orders","msg":"order received","request_id":%q}`+"\n", ts(r, 1), id)
		fmt.Fprintf(files["payments"], `{"time":%q,"level":"info","service":"payments","msg":"charging","request_id":%q}`+"\n", ts(r, 2), id)
		status := 201
		if r%10 == 0 {
			fmt.Fprintf(files["payments"], `{"time":%q,"level":"error","service":"payments","msg":"card declined","request_id":%q}`+"\n", ts(r, 4), id)
			status = 502
		}
		if r%2 == 0 {
			fmt.Fprintf(files["inventory"], `{"time":%q,"level":"debug","service":"inventory","msg":"reserved","request_id":%q}`+"\n", ts(r, 3), id)
		}
		end := base.Add(time.Duration(r)*20*time.Millisecond + 6*time.Millisecond)
		local := end.In(time.FixedZone("", 3600)).Format("02/Jan/2006:15:04:05 -0700")
		fmt.Fprintf(files["nginx"], `203.0.113.7 - - [%s] "POST /api/orders HTTP/1.1" %d 42 "-" "curl/8" request_id=%s request_time=0.006 upstream_response_time=0.005 upstream_addr=10.0.0.5:8080 msec=%d.%03d`+"\n",
			local, status, id, end.Unix(), end.Nanosecond()/1e6)
	}
	eventually(t, 60*time.Second, fmt.Sprintf("%d traces", requests), func() bool { return es.Count("traces-*") >= requests })
	time.Sleep(time.Second) // a second trace for a request would show up by now
	if n := es.Count("traces-*"); n != requests {
		t.Fatalf("%d trace documents for %d requests", n, requests)
	}
	for _, idx := range es.IndicesMatching("traces-*") {
		for docID, d := range es.Docs(idx) {
			id := gjson.GetBytes(d, "trace.id").String()
			var r int
			fmt.Sscanf(id, "%x", &r)
			r--
			if docID != id {
				t.Fatalf("trace document _id %s for trace %s", docID, id)
			}
			// The gateway's span runs from $msec - $request_time to $msec.
			want := `["nginx","orders","payments"]`
			events := 3
			if r%2 == 0 {
				want, events = `["nginx","orders","payments","inventory"]`, 4
			}
			if r%10 == 0 {
				events++
			}
			if gjson.GetBytes(d, "services").Raw != want || gjson.GetBytes(d, "event_count").Int() != int64(events) ||
				gjson.GetBytes(d, "error").Bool() != (r%10 == 0) || gjson.GetBytes(d, "http.request.method").String() != "POST" ||
				gjson.GetBytes(d, "url.path").String() != "/api/orders" || gjson.GetBytes(d, "duration_ms").Float() != 6 {
				t.Fatalf("request %d: %s", r, d)
			}
		}
	}
}

// A request whose events are indexed partly before a collector restart and
// partly after it (as across a Kafka rebalance, by another indexer): the
// second part is merged into the trace document already in Elasticsearch,
// so each request still has one trace with all its events.
func TestTraceMergedAcrossCollectorRestart(t *testing.T) {
	dir := t.TempDir()
	es := estest.New()
	defer es.Close()
	newCollector := func() *collector.Collector {
		// A window of an hour: only the shutdown writes traces. Its
		// flush must not be cut short by the 200 ms drain the other tests
		// use (under the race detector and CI's load it was, once).
		c := startCollector(t, dir, es.URL, func(c *collector.Config) { c.Correlation.Window = time.Hour })
		c.DrainTimeout = 10 * time.Second
		return c
	}
	const requests = 50
	post := func(c *collector.Collector, services ...string) {
		var body bytes.Buffer
		for r := 0; r < requests; r++ {
			for i, svc := range services {
				fmt.Fprintf(&body, `{"time":"2026-11-26T10:00:%02d.%03dZ","level":"info","service":%q,"msg":"step","request_id":"req-%d"}`+"\n", r%60, 100*len(services)+i, svc, r)
			}
		}
		resp, err := http.Post("http://"+c.Addr()+"/v1/events", "application/x-ndjson", &body)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("post: %v %v", err, resp)
		}
		resp.Body.Close()
	}
	first := newCollector()
	post(first, "orders", "payments")
	eventually(t, 10*time.Second, "first part indexed", func() bool { return es.Count("logs-*") >= 2*requests })
	stopCollector(t, first) // writes the traces it holds: 2 events each
	if n := es.Count("traces-*"); n != requests {
		t.Fatalf("%d traces after the first collector", n)
	}
	second := newCollector()
	post(second, "inventory")
	eventually(t, 10*time.Second, "second part indexed", func() bool { return es.Count("logs-*") >= 3*requests })
	stopCollector(t, second)
	if n := es.Count("traces-*"); n != requests {
		t.Fatalf("%d trace documents for %d requests", n, requests)
	}
	for _, idx := range es.IndicesMatching("traces-*") {
		for id, d := range es.Docs(idx) {
			if gjson.GetBytes(d, "event_count").Int() != 3 || len(gjson.GetBytes(d, "services").Array()) != 3 {
				t.Fatalf("trace %s not merged: %s", id, d)
			}
		}
	}
}
