package correlate_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/logweave/logweave/correlate"
	"github.com/logweave/logweave/filters"
	"github.com/logweave/logweave/pipeline"
)

// traceLines are lines of every kind the correlator meets: JSON with the
// names normalise renames, ids of every accepted type, nginx access logs,
// odd timestamps, duplicate keys, text.
var traceLines = []string{
	`{"time":"2026-11-26T10:00:00.123456Z","level":"INFO","service":"orders","request_id":"r-1","msg":"a"}`,
	`{"@timestamp":"2026-11-26T10:00:00.5+01:00","log":{"level":"error"},"service":{"name":"pay"},"http":{"request":{"id":"r-1"}}}`,
	`{"ts":1764151200.25,"severity":"warn","requestId":42,"message":"numeric id"}`,
	`{"trace":{"id":"t-only"},"@timestamp":"2026-11-26T10:00:01Z"}`,
	`{"trace":{"id":"first"},"trace":{"id":"second"},"request_id":"r-2"}`,
	`{"request_id":"r-3","http":{"response":{"status_code":"503"}},"event":{"duration":"1500"}}`,
	`{"headers":{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},"timestamp":"not a time"}`,
	`{"request_id":"","service":{"name":"x"}}`,
	`{"request_id":"r-4","@timestamp":"2024-02-31T10:00:00.000Z"}`,
	`{"request_id":"r-5","@timestamp":"10000-01-01T00:00:00.000Z"}`,
	`203.0.113.7 - alice [26/Nov/2026:10:15:00 +0100] "POST /api/orders?x=1 HTTP/1.1" 502 157 "https://shop.example/" "curl/8.5.0" request_id=r-1 request_time=0.250`,
	`10.0.0.9 - - [26/Nov/2026:10:15:01 +0100] "GET / HTTP/1.1" 200 1 "-" "-" request_id=r-6 request_time=0.001`,
	`plain text request_id=r-1`,
	`{"request_id":"r-7","service":{"name":"a\u00e9\"b"},"log":{"level":"DEBUG"}}`,
	`{"request_id":"r-8","trace":{"id":"own"},"url":{"path":"/p"},"source":{"ip":"::1"},"event":{"dataset":"nginx.access","duration":5}}`,
	`{}`,
	``,
}

// The traces built from what the filters found (Record.Trace, carried
// through the buffer) are the traces built by parsing the documents.
func TestFieldsFromTheFiltersBuildTheSameTraces(t *testing.T) {
	for _, line := range traceLines {
		if got, want := tracesBothWays(t, []string{line}); got != want {
			t.Errorf("%s:\nfrom fields:   %s\nfrom document: %s", line, got, want)
		}
	}
	if got, want := tracesBothWays(t, traceLines); got != want {
		t.Errorf("all lines:\nfrom fields:   %s\nfrom document: %s", got, want)
	}
}

func FuzzFieldsFromTheFiltersBuildTheSameTraces(f *testing.F) {
	for _, l := range traceLines {
		f.Add(l)
	}
	f.Fuzz(func(t *testing.T, line string) {
		if got, want := tracesBothWays(t, []string{line}); got != want {
			t.Fatalf("%q:\nfrom fields:   %s\nfrom document: %s", line, got, want)
		}
	})
}

func tracesBothWays(t testing.TB, lines []string) (fromFields, fromDoc string) {
	idx, _ := pipeline.ParseIndexPattern("logs-%{+yyyy.MM.dd}")
	p := filters.NewProcessor(idx, nil)
	p.TraceFields = true
	readAt := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	byFields := correlate.New(correlate.Config{Window: time.Minute})
	byDoc := correlate.New(correlate.Config{Window: time.Minute})
	for i, line := range lines {
		var ev pipeline.Event
		rec := p.Process(&pipeline.Envelope{Host: "h", Path: "/a.log", Offset: int64(i), ReadAt: readAt, Line: []byte(line)}, &ev, nil)
		var raw []byte
		raw = rec.AppendBinary(raw) // through the buffer's framing
		var back pipeline.Record
		if err := back.UnmarshalBinary(raw); err != nil {
			t.Fatal(err)
		}
		var tf pipeline.TraceFields
		if err := tf.UnmarshalBinary(back.Trace); err != nil {
			t.Fatalf("%q: trace fields %x: %v", line, back.Trace, err)
		}
		byFields.AddFields(back.ID, &tf, readAt)
		byDoc.Add(back.Doc, readAt)
	}
	return encodeAll(byFields.Flush()), encodeAll(byDoc.Flush())
}

func encodeAll(traces []*correlate.Trace) string {
	var b bytes.Buffer
	for _, tr := range traces {
		b.Write(tr.AppendJSON(nil))
		b.WriteByte('\n')
	}
	return b.String()
}
