package correlate_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/logweave/logweave/correlate"
	"github.com/logweave/logweave/pipeline"
)

var t0 = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

func doc(id string, at time.Time, service, level string, extra string) []byte {
	return []byte(fmt.Sprintf(`{"@timestamp":%q,"service":{"name":%q},"log":{"level":%q},"trace":{"id":%q},"http":{"request":{"id":%q}}%s}`,
		at.Format("2006-01-02T15:04:05.000Z"), service, level, id, id, extra))
}

// request r: the gateway's access log line, then orders, payments (every
// 7th fails with an error), and for every 3rd request inventory; the gateway
// logs last, when the response went out.
type request struct {
	id       string
	docs     [][]byte
	services []string
	start    time.Time
	end      time.Time
	events   int
	errored  bool
}

func makeRequest(r int) request {
	id := fmt.Sprintf("req-%04d", r)
	start := t0.Add(time.Duration(r) * 3 * time.Millisecond)
	q := request{id: id, start: start, services: []string{"orders", "payments"}}
	q.docs = append(q.docs,
		doc(id, start.Add(1*time.Millisecond), "orders", "info", ""),
		doc(id, start.Add(2*time.Millisecond), "payments", "info", ""),
	)
	status := 200
	if r%7 == 0 {
		q.docs = append(q.docs, doc(id, start.Add(5*time.Millisecond), "payments", "error", ""))
		q.errored, status = true, 502
	}
	if r%3 == 0 {
		q.docs = append(q.docs, doc(id, start.Add(3*time.Millisecond), "inventory", "debug", ""))
		q.services = append(q.services, "inventory")
	}
	q.docs = append(q.docs, doc(id, start.Add(8*time.Millisecond), "orders", "info", ""))
	q.end = start.Add(9 * time.Millisecond)
	// nginx stamps its line when the response went out ($time_local).
	q.docs = append(q.docs, doc(id, q.end, "nginx", "info", fmt.Sprintf(
		`,"event":{"dataset":"nginx.access","duration":9000000},"http":{"request":{"method":"POST","id":%q},"response":{"status_code":%d}},"url":{"path":"/api/orders"},"source":{"ip":"203.0.113.7"}`, id, status)))
	q.events = len(q.docs)
	return q
}

func TestThousandRequestsAcrossFourServicesOutOfOrder(t *testing.T) {
	var reqs []request
	var all [][]byte
	for r := 0; r < 1000; r++ {
		q := makeRequest(r)
		reqs = append(reqs, q)
		all = append(all, q.docs...)
	}
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	c := correlate.New(correlate.Config{Window: 30 * time.Second, MaxOpenTraces: 100000})
	now := time.Now()
	for _, d := range all {
		if out := c.Add(d, now); len(out) != 0 {
			t.Fatal("a trace let go under the memory bound")
		}
	}
	if got := c.Expire(now.Add(29 * time.Second)); len(got) != 0 {
		t.Fatalf("%d traces written before the window", len(got))
	}
	traces := c.Expire(now.Add(30 * time.Second))
	if len(traces) != 1000 || c.Open() != 0 {
		t.Fatalf("%d traces, %d still open; want 1000, 0", len(traces), c.Open())
	}
	byID := map[string]*correlate.Trace{}
	for _, tr := range traces {
		if byID[tr.ID] != nil {
			t.Fatalf("two traces for %s", tr.ID)
		}
		byID[tr.ID] = tr
	}
	for r, q := range reqs {
		tr := byID[q.id]
		if tr == nil {
			t.Fatalf("no trace for %s", q.id)
		}
		// The gateway's span covers the request ($msec - $request_time to
		// $msec), so it comes first.
		wantServices := []string{"nginx", "orders", "payments"}
		if r%3 == 0 {
			wantServices = append(wantServices, "inventory")
		}
		if fmt.Sprint(tr.Services()) != fmt.Sprint(wantServices) {
			t.Fatalf("%s: services %v, want %v", q.id, tr.Services(), wantServices)
		}
		if tr.Events != q.events || tr.Error != q.errored || tr.Duration() != 9*time.Millisecond {
			t.Fatalf("%s: %d events (want %d), error %v (want %v), duration %v", q.id, tr.Events, q.events, tr.Error, q.errored, tr.Duration())
		}
		if tr.Entry == nil || tr.Entry.Method != "POST" || tr.Entry.Path != "/api/orders" || (tr.Entry.Status == 502) != q.errored {
			t.Fatalf("%s: entry %+v", q.id, tr.Entry)
		}
		doc := tr.AppendJSON(nil)
		if !gjson.ValidBytes(doc) {
			t.Fatalf("invalid trace document %s", doc)
		}
		pay := gjson.GetBytes(doc, `spans.#(service=="payments")`)
		if pay.Get("event_count").Int() != int64(1+b2i(q.errored)) || (pay.Get("level").String() == "error") != q.errored ||
			pay.Get("error_count").Int() != int64(b2i(q.errored)) {
			t.Fatalf("%s: payments span %s", q.id, pay.Raw)
		}
		if gjson.GetBytes(doc, "duration_ms").Float() != 9 || gjson.GetBytes(doc, "trace.id").String() != q.id {
			t.Fatalf("%s: %s", q.id, doc)
		}
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Events that come after their trace was written make a partial trace of
// the same id; merged into the written document (read back), it is the
// trace of all the events, whichever part came first.
func TestLateEventsUpdateTheirTrace(t *testing.T) {
	q := makeRequest(21) // errored, inventory too: 7 events
	now := time.Now()
	whole := correlate.New(correlate.Config{Window: time.Second})
	for _, d := range q.docs {
		whole.Add(d, now)
	}
	want := whole.Flush()[0].AppendJSON(nil)
	for split := 1; split < len(q.docs); split++ {
		c := correlate.New(correlate.Config{Window: time.Second})
		for _, d := range q.docs[:split] {
			c.Add(d, now)
		}
		first := c.Expire(now.Add(time.Second))
		for _, d := range q.docs[split:] {
			c.Add(d, now.Add(5*time.Second))
		}
		late := c.Expire(now.Add(10 * time.Second))
		if len(first) != 1 || len(late) != 1 || late[0].ID != q.id {
			t.Fatalf("split %d: %d and %d traces", split, len(first), len(late))
		}
		written, ok := correlate.ParseTrace(first[0].AppendJSON(nil))
		if !ok {
			t.Fatal("trace document not read back")
		}
		written.Merge(late[0])
		if got := written.AppendJSON(nil); string(got) != string(want) {
			t.Fatalf("split %d, merged:\n%s\nwant:\n%s", split, got, want)
		}
	}
}

// lastDocs keeps the last document written under each id: an output that
// cannot be read back (the file output), to a reader that takes the last.
type lastDocs map[string][]byte

func (l lastDocs) Write(_ context.Context, recs []pipeline.Record) error {
	for _, r := range recs {
		l[r.ID] = bytes.Clone(r.Doc)
	}
	return nil
}

// The same through a Writer over an output it cannot read back: it merges
// a late part into the trace it remembers having written, so the last
// document of the request is the trace of all its events.
func TestWriterMergesLatePartsIntoWhatItWrote(t *testing.T) {
	q := makeRequest(21)
	var all []pipeline.Record
	for i, d := range q.docs { // with event ids, to tell a redelivery
		d = append(bytes.TrimSuffix(bytes.Clone(d), []byte("}")), fmt.Sprintf(`,"event":{"id":"e%d"}}`, i)...)
		all = append(all, pipeline.Record{Doc: d})
	}
	now := time.Now()
	whole := correlate.New(correlate.Config{Window: time.Second})
	for _, r := range all {
		whole.Add(r.Doc, now)
	}
	want := whole.Flush()[0].AppendJSON(nil)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx := context.Background()
	for split := 1; split < len(all); split++ {
		out := lastDocs{}
		w, err := correlate.NewWriter(correlate.WriterConfig{Index: "traces", Config: correlate.Config{Window: time.Second}}, out, quiet)
		if err != nil {
			t.Fatal(err)
		}
		w.Add(ctx, all[:split], now)
		w.Expire(ctx, now.Add(time.Second))
		if out[q.id] == nil {
			t.Fatalf("split %d: the first part was not written", split)
		}
		w.Add(ctx, all[split:], now.Add(5*time.Second))
		w.Add(ctx, all[split-1:split], now.Add(5*time.Second)) // redelivered from the first part: counts once
		w.Expire(ctx, now.Add(10*time.Second))
		if got := out[q.id]; string(got) != string(want) {
			t.Fatalf("split %d, last written:\n%s\nwant:\n%s", split, got, want)
		}
	}
}

// A million distinct ids stream through: the correlator never holds more
// than max_open_traces, lets the oldest go first, and its memory stays
// bounded.
func TestMaxOpenTracesBoundsMemory(t *testing.T) {
	const max = 10000
	c := correlate.New(correlate.Config{Window: time.Hour, MaxOpenTraces: max})
	now := time.Now()
	var ms runtime.MemStats
	released := 0
	var peak uint64
	var d []byte
	for i := 0; i < 1_000_000; i++ {
		d = append(d[:0], `{"@timestamp":"2026-11-26T10:00:00.000Z","service":{"name":"svc"},"trace":{"id":"id-`...)
		d = append(strconv.AppendInt(d, int64(i), 10), `"}}`...)
		out := c.Add(d, now)
		for _, tr := range out {
			if tr.ID[3:] != strconv.Itoa(released) {
				t.Fatalf("let go %s, want the oldest id-%d", tr.ID, released)
			}
			released++
		}
		if c.Open() > max {
			t.Fatalf("%d open traces", c.Open())
		}
		if i%100000 == 99999 {
			runtime.GC()
			runtime.ReadMemStats(&ms)
			peak = max64(peak, ms.HeapAlloc)
		}
	}
	if released != 1_000_000-max {
		t.Fatalf("%d let go", released)
	}
	if peak > 64<<20 {
		t.Fatalf("heap reached %d MiB holding %d traces", peak>>20, max)
	}
}

func max64(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}

func BenchmarkCorrelate(b *testing.B) {
	docs := make([][]byte, 0, 4096)
	for r := 0; len(docs) < 4000; r++ {
		docs = append(docs, makeRequest(r).docs...)
	}
	c := correlate.New(correlate.Config{Window: time.Minute, MaxOpenTraces: 100000})
	now := time.Now()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		c.Add(docs[i%len(docs)], now)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// An event delivered twice (Kafka redelivers what was not committed, also
// to another indexer) counts once, in one part or across parts.
func TestRedeliveredEventsCountOnce(t *testing.T) {
	ev := func(n int, service string) []byte {
		return doc("req-1", t0.Add(time.Duration(n)*time.Millisecond), service, "info", fmt.Sprintf(`,"event":{"id":"e%d"}`, n))
	}
	now := time.Now()
	a := correlate.New(correlate.Config{Window: time.Second})
	for _, n := range []int{1, 2, 2, 3} {
		a.Add(ev(n, "orders"), now)
	}
	first := a.Flush()[0]
	if first.Events != 3 {
		t.Fatalf("%d events counted, want 3", first.Events)
	}
	// Another indexer got 3 and 4 (3 again, redelivered after a rebalance).
	b := correlate.New(correlate.Config{Window: time.Second})
	b.Add(ev(3, "orders"), now)
	b.Add(ev(4, "payments"), now)
	written, _ := correlate.ParseTrace(first.AppendJSON(nil))
	written.Merge(b.Flush()[0])
	doc := written.AppendJSON(nil)
	if gjson.GetBytes(doc, "event_count").Int() != 4 || gjson.GetBytes(doc, `spans.#(service=="orders").event_count`).Int() != 3 ||
		gjson.GetBytes(doc, "event_hashes.#").Int() != 4 {
		t.Fatalf("merged: %s", doc)
	}
}

// Distinct request ids flowing through for good (a busy gateway, a long
// window): the open traces stay within MaxBytes, and the heap stays flat
// (120,000 requests here, 40 times what the bound holds).
func TestOpenTracesBoundedByBytes(t *testing.T) {
	const bound = 2 << 20
	c := correlate.New(correlate.Config{Window: time.Hour, MaxOpenTraces: 1 << 30, MaxBytes: bound})
	now := time.Now()
	var ms runtime.MemStats
	var heaps []uint64
	written := 0
	for r := 0; r < 120_000; r++ {
		id := fmt.Sprintf("%032x", r)
		for e := 0; e < 3; e++ {
			d := doc(id, t0.Add(time.Duration(r)*time.Millisecond), "orders", "info", fmt.Sprintf(`,"event":{"id":"%027d"}`, r*3+e))
			written += len(c.Add(d, now))
		}
		if c.Bytes() > bound {
			t.Fatalf("after %d requests: %d bytes open, bound %d", r, c.Bytes(), bound)
		}
		if r%30_000 == 29_999 {
			runtime.GC()
			runtime.ReadMemStats(&ms)
			heaps = append(heaps, ms.HeapAlloc)
		}
	}
	t.Logf("open %d traces, %d bytes estimated; heap after each 30k requests: %v; %d written early", c.Open(), c.Bytes(), heaps, written)
	if heaps[len(heaps)-1] > heaps[0]+heaps[0]/4 {
		t.Fatalf("heap grew from %d to %d while the bound held", heaps[0], heaps[len(heaps)-1])
	}
	if heaps[len(heaps)-1] > 3*bound {
		t.Fatalf("heap %d for a bound of %d: the estimate is far below the real cost", heaps[len(heaps)-1], bound)
	}
}

// BenchmarkTraceCost measures the heap an open trace holds, by its number
// of events (collector-like documents: 32-hex request ids, 27-character
// event ids, 4 services), beside what the correlator counts for it
// (heapCost), which must not be less.
func BenchmarkTraceCost(b *testing.B) {
	services := []string{"gateway", "orders", "payment", "inventory"}
	for _, k := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("events=%d", k), func(b *testing.B) {
			const n = 5000
			docs := make([][]byte, 0, n*k)
			for r := 0; r < n; r++ {
				for e := 0; e < k; e++ {
					docs = append(docs, []byte(fmt.Sprintf(`{"@timestamp":"2026-11-26T10:00:%02d.%03dZ","message":"m","trace":{"id":"%032x"},"service":{"name":%q},"log":{"level":"info"},"event":{"id":"%027d"}}`,
						e%60, e, r, services[e%4], r*k+e)))
				}
			}
			var before, after runtime.MemStats
			for b.Loop() {
				runtime.GC()
				runtime.ReadMemStats(&before)
				c := correlate.New(correlate.Config{Window: time.Hour, MaxOpenTraces: n})
				now := time.Now()
				for _, d := range docs {
					c.Add(d, now)
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "bytes/trace")
				b.ReportMetric(float64(c.Bytes())/n, "counted/trace")
				if heap := float64(after.HeapAlloc - before.HeapAlloc); float64(c.Bytes()) < 0.9*heap {
					b.Errorf("the correlator counts %d bytes for %d traces that hold %.0f", c.Bytes(), n, heap)
				}
				runtime.KeepAlive(c)
			}
		})
	}
}

// A trace document written before ids were hashed (event_ids holds the ids
// themselves) still counts a redelivered event once when a later part is
// merged into it: during a rolling upgrade the new collector merges into
// what the old one wrote.
func TestMergeIntoADocumentOfThePreviousVersion(t *testing.T) {
	old := []byte(`{"trace":{"id":"req-1"},"@timestamp":"2026-11-26T10:00:00.001Z","end":"2026-11-26T10:00:00.003Z","duration_ms":2,"event_count":3,"error":false,` +
		`"services":["orders"],"spans":[{"service":"orders","start":"2026-11-26T10:00:00.001Z","end":"2026-11-26T10:00:00.003Z","duration_ms":2,"event_count":3,"error_count":0,"level":"info"}],` +
		`"event_ids":["e1","e2","e3"]}`)
	base, ok := correlate.ParseTrace(old)
	if !ok {
		t.Fatal("old document not read")
	}
	c := correlate.New(correlate.Config{Window: time.Second})
	now := time.Now()
	for _, n := range []int{3, 4} { // e3 again, and a new e4
		c.Add(doc("req-1", t0.Add(time.Duration(n)*time.Millisecond), "payments", "info", fmt.Sprintf(`,"event":{"id":"e%d"}`, n)), now)
	}
	base.Merge(c.Flush()[0])
	merged := base.AppendJSON(nil)
	if gjson.GetBytes(merged, "event_count").Int() != 4 || gjson.GetBytes(merged, "event_hashes.#").Int() != 4 {
		t.Fatalf("merged: %s", merged)
	}
	// And what the new version wrote reads back the same.
	again, _ := correlate.ParseTrace(merged)
	c.Add(doc("req-1", t0.Add(4*time.Millisecond), "payments", "info", `,"event":{"id":"e4"}`), now)
	again.Merge(c.Flush()[0])
	if n := gjson.GetBytes(again.AppendJSON(nil), "event_count").Int(); n != 4 {
		t.Fatalf("a redelivered event counted again after a round trip: %d", n)
	}
}
