package ingest_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/logweave/logweave/pipeline"
)

type discardSink struct{}

func (discardSink) Write(context.Context, []pipeline.Record) error { return nil }

// BenchmarkIngest is one shipper batch of 1000 envelopes (gzip) through the
// HTTP handler: decompress, split, envelope decode, filters, encode. The
// sink discards, so this is the collector's CPU cost per event before the
// buffer's fsync.
func BenchmarkIngest(b *testing.B) {
	var body []byte
	for i := 0; i < 1000; i++ {
		e := pipeline.Envelope{ID: fmt.Sprintf("id-%d", i), ReadAt: time.Now(), Host: "node-1", Path: "/var/log/app/payment.log", Offset: int64(i * 200),
			Line: []byte(fmt.Sprintf(`{"time":"2026-11-26T10:15:00.123Z","level":"INFO","service":"payment","msg":"charged card %d","request_id":"7f3c9a1e2b4d4e6f8a0b1c2d3e4f%04d","amount":42.5,"user":{"id":"u-123"}}`, i, i))}
		body = append(e.AppendJSON(body), '\n')
	}
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	zw.Write(body)
	zw.Close()
	h := newHandler(discardSink{})
	h.MaxBodyBytes = 32 << 20
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/v1/events", bytes.NewReader(zb.Bytes()))
		req.Header.Set("Content-Encoding", "gzip")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatal(rec.Code, rec.Body.String())
		}
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "events/s")
}
