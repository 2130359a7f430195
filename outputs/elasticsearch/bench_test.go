package elasticsearch_test

import (
	"context"
	"testing"
	"time"

	"github.com/logweave/logweave/filters"
	"github.com/logweave/logweave/internal/estest"
	"github.com/logweave/logweave/outputs/elasticsearch"
	"github.com/logweave/logweave/pipeline"
)

var benchLine = []byte(`{"time":"2026-11-26T10:15:00.123Z","level":"INFO","service":"payment","msg":"charged card","request_id":"7f3c9a1e2b4d4e6f8a0b1c2d3e4f5a6b","amount":42.5,"user":{"id":"u-123","country":"DE"},"duration_ms":12}`)

// BenchmarkWrite is Output.Write of 2000-record batches to a server that
// only counts: the client-side cost of bulk indexing per event.
func BenchmarkWrite(b *testing.B) {
	srv := estest.NewCounter()
	defer srv.Close()
	cfg := elasticsearch.DefaultConfig()
	cfg.URLs = []string{srv.URL}
	cfg.Compression = false
	o, err := elasticsearch.New(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	idx, _ := pipeline.ParseIndexPattern(cfg.Index)
	p := filters.NewProcessor(idx, nil)
	var ev pipeline.Event
	recs := make([]pipeline.Record, 2000)
	for i := range recs {
		env := pipeline.Envelope{ID: pipeline.EventID("h", "f", int64(i), 0, benchLine), ReadAt: time.Now(), Line: benchLine}
		recs[i] = p.Process(&env, &ev, nil)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := o.Write(context.Background(), recs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(recs))/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkIndexPath is the collector's CPU cost per event without the
// network: JSON parse + normalise (ECS) + request id + origin fields +
// document encode + bulk encode. One op is one event; run with -cpu 1 for
// the per-core rate.
func BenchmarkIndexPath(b *testing.B) {
	idx, _ := pipeline.ParseIndexPattern("logs-%{+yyyy.MM.dd}")
	p := filters.NewProcessor(idx, nil)
	env := pipeline.Envelope{ID: "lwXAoE_NDS5pr2YLCEu6Uvm-hjw", ReadAt: time.Now(), Host: "node-1", Path: "/var/log/app/payment.log", Offset: 123456, Line: benchLine}
	var ev pipeline.Event
	var doc, body []byte
	recs := make([]pipeline.Record, 1)
	b.SetBytes(int64(len(benchLine)))
	b.ReportAllocs()
	for b.Loop() {
		recs[0] = p.Process(&env, &ev, doc[:0])
		doc = recs[0].Doc
		body = elasticsearch.AppendBulk(body[:0], recs)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
