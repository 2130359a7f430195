package pipeline_test

import (
	"testing"
	"time"

	"github.com/logweave/logweave/pipeline"
)

var benchDoc = []byte(`{"time":"2026-11-26T10:15:00.123Z","level":"INFO","service":"payment","msg":"charged card","request_id":"7f3c9a1e2b4d4e6f8a0b1c2d3e4f5a6b","amount":42.5,"user":{"id":"u-123","country":"DE"},"duration_ms":12}`)

// BenchmarkEncode splices the edits a normal event gets into its document.
func BenchmarkEncode(b *testing.B) {
	e := &pipeline.Event{Doc: benchDoc}
	e.Rename("msg", "message")
	e.SetString("log.level", "info")
	e.Delete("level")
	e.Rename("service", "service.name")
	e.Delete("time")
	e.SetString("@timestamp", "2026-11-26T10:15:00.123Z")
	e.SetString("http.request.id", "7f3c9a1e2b4d4e6f8a0b1c2d3e4f5a6b")
	e.SetString("trace.id", "7f3c9a1e2b4d4e6f8a0b1c2d3e4f5a6b")
	e.SetString("host.name", "node-1")
	e.SetString("event.id", "abcdefghijklmnopqrstuvwxyz0")
	var dst []byte
	b.SetBytes(int64(len(benchDoc)))
	b.ReportAllocs()
	for b.Loop() {
		dst = e.Encode(dst[:0])
	}
}

func BenchmarkIndexPattern(b *testing.B) {
	p, _ := pipeline.ParseIndexPattern("logs-%{+yyyy.MM.dd}")
	t := time.Now()
	var dst []byte
	b.ReportAllocs()
	for b.Loop() {
		dst = p.Append(dst[:0], t)
	}
}

func BenchmarkEnvelopeRoundTrip(b *testing.B) {
	in := pipeline.Envelope{ID: "abcdefghijklmnopqrstuvwxyz0", ReadAt: time.Now(), Host: "node-1", Path: "/var/log/app/payment.log", Offset: 123456, Line: benchDoc}
	var out pipeline.Envelope
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = in.AppendJSON(buf[:0])
		pipeline.ParseEnvelope(buf, &out)
	}
}
