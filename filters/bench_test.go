package filters_test

import (
	"testing"
	"time"

	"github.com/logweave/logweave/filters"
	"github.com/logweave/logweave/pipeline"
)

var benchLine = []byte(`{"time":"2026-11-26T10:15:00.123Z","level":"INFO","service":"payment","msg":"charged card","request_id":"7f3c9a1e2b4d4e6f8a0b1c2d3e4f5a6b","amount":42.5,"user":{"id":"u-123","country":"DE"},"duration_ms":12}`)

func BenchmarkJSONFilter(b *testing.B) {
	ev := &pipeline.Event{}
	b.SetBytes(int64(len(benchLine)))
	b.ReportAllocs()
	for b.Loop() {
		ev.Reset()
		ev.Line = benchLine
		filters.JSON{}.Apply(ev)
	}
}

func BenchmarkNormalise(b *testing.B) {
	ev := &pipeline.Event{}
	b.ReportAllocs()
	for b.Loop() {
		ev.Reset()
		ev.Line = benchLine
		ev.SetDoc(benchLine)
		filters.Normalise{}.Apply(ev)
	}
}

func BenchmarkRequestID(b *testing.B) {
	ev := &pipeline.Event{}
	f := filters.RequestID{Fields: filters.DefaultRequestIDFields}
	b.ReportAllocs()
	for b.Loop() {
		ev.Reset()
		ev.SetDoc(benchLine)
		f.Apply(ev)
	}
}

// BenchmarkProcess is the collector's whole per-event path from an
// envelope to an encoded record: json, normalise, request id, origin
// fields, index name, encode.
func BenchmarkProcess(b *testing.B) {
	idx, _ := pipeline.ParseIndexPattern("logs-%{+yyyy.MM.dd}")
	p := filters.NewProcessor(idx, nil)
	env := &pipeline.Envelope{ID: "abc", ReadAt: time.Now(), Host: "node-1", Path: "/var/log/app/payment.log", Offset: 123456, Line: benchLine}
	ev := &pipeline.Event{}
	var dst []byte
	b.SetBytes(int64(len(benchLine)))
	b.ReportAllocs()
	for b.Loop() {
		rec := p.Process(env, ev, dst[:0])
		dst = rec.Doc
	}
}

func BenchmarkProcessParseFailure(b *testing.B) {
	idx, _ := pipeline.ParseIndexPattern("logs-%{+yyyy.MM.dd}")
	p := filters.NewProcessor(idx, nil)
	env := &pipeline.Envelope{ID: "abc", ReadAt: time.Now(), Host: "node-1", Path: "/var/log/app/payment.log", Line: []byte("2026-11-26 10:15:00 ERROR [main] c.e.Payment - card processor timeout after 3000 ms")}
	ev := &pipeline.Event{}
	var dst []byte
	b.ReportAllocs()
	for b.Loop() {
		rec := p.Process(env, ev, dst[:0])
		dst = rec.Doc
	}
}
