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

// BenchmarkProcessTraceFields is BenchmarkProcess with traces on (the
// record carries its TraceFields), on a line of the end-to-end mix.
func BenchmarkProcessTraceFields(b *testing.B) {
	idx, _ := pipeline.ParseIndexPattern("logs-%{+yyyy.MM.dd}")
	line := []byte(`{"time":"2026-12-06T06:32:10.123Z","level":"info","service":"orders","msg":"handled step 3 of /api/cart: lorem ipsum dolor sit amet lorem ipsum dolor sit amet lor","request_id":"9f86d081884c7d659a2feaa0c55ad015","http":{"method":"POST","path":"/api/cart","status":200},"duration_ms":42.125,"user_id":"u-4711"}`)
	for _, on := range []bool{false, true} {
		b.Run(map[bool]string{false: "off", true: "on"}[on], func(b *testing.B) {
			p := filters.NewProcessor(idx, nil)
			p.TraceFields = on
			env := &pipeline.Envelope{ID: "abc", ReadAt: time.Now(), Host: "node-1", Path: "/var/log/app/orders.log", Offset: 123456, Line: line}
			ev := &pipeline.Event{}
			var dst []byte
			b.ReportAllocs()
			for b.Loop() {
				rec := p.Process(env, ev, dst[:0])
				dst = rec.Doc
			}
		})
	}
}

// BenchmarkProcessTextLine: a text line of the end-to-end mix, its head
// (timestamp, level, logger) and key=value pairs read, joined to its
// request.
func BenchmarkProcessTextLine(b *testing.B) {
	idx, _ := pipeline.ParseIndexPattern("logs-%{+yyyy.MM.dd}")
	p := filters.NewProcessor(idx, nil)
	p.TraceFields = true
	env := &pipeline.Envelope{ID: "abc", ReadAt: time.Now(), Host: "node-1", Line: []byte("2024-05-01 12:00:00.278 WARN  [gateway] connection pool exhausted (active=50 idle=0 waiting=191), retrying in 250ms request_id=cb4e0b8e312746de37d461f24b053142 thread=http-nio-8080-exec-150")}
	ev := &pipeline.Event{}
	var dst []byte
	b.ReportAllocs()
	for b.Loop() {
		rec := p.Process(env, ev, dst[:0])
		dst = rec.Doc
	}
}
