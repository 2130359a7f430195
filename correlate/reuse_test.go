package correlate_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/logweave/logweave/correlate"
	"github.com/logweave/logweave/internal/estest"
	"github.com/logweave/logweave/outputs/elasticsearch"
	"github.com/logweave/logweave/pipeline"
)

// Traces let go are reused for new ones once the Writer is done with them
// (written and forgotten, or merged into the trace written before): enough
// requests go through a small correlator that storage is reused many times
// over, some of them with events that come after their trace was written.
// Every request's last document counts its events and services exactly.
func TestReusedTracesCountExactly(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	services := []string{"gateway", "auth", "orders", "inventory", "payment", "shipping"}
	type req = reqTrace
	byID := map[string]*req{}
	var open, late []*req
	var recs []pipeline.Record
	at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	add := func(r *req) {
		at = at.Add(time.Millisecond)
		svc := services[rng.IntN(len(services))]
		r.count++
		r.svcs[svc] = true
		f := pipeline.TraceFields{TraceID: r.id, Time: at.UnixNano(), Service: svc, Level: "info", Status: 200}
		recs = append(recs, pipeline.Record{ID: fmt.Sprintf("e%07d", len(recs)), Trace: f.AppendBinary(nil)})
	}
	for len(recs) < 120_000 {
		for len(open) < 32 {
			r := &req{id: fmt.Sprintf("%016x", rng.Uint64()), left: 1 + rng.IntN(12), late: rng.IntN(10) == 0, svcs: map[string]bool{}}
			byID[r.id] = r
			open = append(open, r)
		}
		k := rng.IntN(len(open))
		r := open[k]
		add(r)
		if r.left--; r.left == 0 {
			open[k] = open[len(open)-1]
			open = open[:len(open)-1]
			if r.late {
				late = append(late, r)
			}
		}
		// Now and then an event of a request finished a while ago: its
		// trace was let go, and the part it makes is merged into what was
		// written
		// (~500-3,000 requests back: past the correlator's 256 KiB, within
		// the ~8 MiB of written traces the Writer remembers).
		if len(late) > 300 && rng.IntN(50) == 0 {
			add(late[len(late)-300+rng.IntN(250)])
		}
	}
	// 96 KiB: requests are let go while still active, some twice in one
	// batch (their parts are then written as one).
	for _, budget := range []int64{96 << 10, 256 << 10} {
		srv := estest.New()
		defer srv.Close()
		esCfg := elasticsearch.DefaultConfig()
		esCfg.URLs = []string{srv.URL}
		es, err := elasticsearch.New(esCfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		files := lastDocs{}
		for _, name := range []string{"file output", "elasticsearch"} {
			var out correlate.Store = files
			if name == "elasticsearch" {
				out = es
			}
			w, err := correlate.NewWriter(correlate.WriterConfig{Index: "traces-%{+yyyy.MM.dd}",
				Config: correlate.Config{Window: time.Hour, MaxBytes: budget}}, out, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Fatal(err)
			}
			ctx, now := context.Background(), time.Now()
			for off := 0; off < len(recs); off += 1000 {
				w.Add(ctx, recs[off:min(off+1000, len(recs))], now)
			}
			w.Flush(ctx)
			name = fmt.Sprintf("%s, max_memory %d KiB", name, budget>>10)
			if out == es {
				checkTraces(t, name, byID, srv.Docs("traces-2026.12.06"))
			} else {
				checkTraces(t, name, byID, files)
			}
		}
	}
}

type reqTrace struct {
	id    string
	left  int
	late  bool
	count int
	svcs  map[string]bool
}

func checkTraces(t *testing.T, name string, byID map[string]*reqTrace, store map[string][]byte) {
	t.Helper()
	for id, r := range byID {
		if r.count == 0 { // made when the events ran out
			delete(byID, id)
		}
	}
	if len(store) != len(byID) {
		t.Fatalf("%s: %d trace documents, want %d", name, len(store), len(byID))
	}
	for id, r := range byID {
		doc := gjson.ParseBytes(store[id])
		if got := int(doc.Get("event_count").Int()); got != r.count {
			t.Fatalf("%s: %s: event_count %d, want %d: %s", name, id, got, r.count, store[id])
		}
		sum := 0
		for _, s := range doc.Get("spans").Array() {
			if !r.svcs[s.Get("service").String()] {
				t.Fatalf("%s: %s: span of %s, a service it never saw: %s", name, id, s.Get("service"), store[id])
			}
			sum += int(s.Get("event_count").Int())
		}
		if sum != r.count || len(doc.Get("spans").Array()) != len(r.svcs) {
			t.Fatalf("%s: %s: spans count %d events of %d services, want %d of %d: %s", name, id, sum, len(doc.Get("spans").Array()), r.count, len(r.svcs), store[id])
		}
	}
}
