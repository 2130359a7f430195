package otlp

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/logweave/logweave/pipeline"
)

var t0 = time.Date(2026, 12, 6, 10, 0, 0, 123456789, time.UTC)

// sample is an export request of two records from one service.
func sample() plogotlp.ExportRequest {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "checkout")
	rl.Resource().Attributes().PutStr("k8s.pod.name", "checkout-7d9f")
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName("com.example.checkout")
	lr := sl.LogRecords().AppendEmpty()
	lr.SetTimestamp(pcommon.NewTimestampFromTime(t0))
	lr.SetSeverityNumber(plog.SeverityNumberWarn)
	lr.Body().SetStr("card declined")
	lr.SetTraceID(pcommon.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36})
	lr.SetSpanID(pcommon.SpanID{0, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7})
	hdr := lr.Attributes().PutEmptySlice("http.request.header.x-request-id")
	hdr.AppendEmpty().SetStr("req-42")
	lr.Attributes().PutInt("order.items", 3)
	lr2 := sl.LogRecords().AppendEmpty()
	lr2.SetObservedTimestamp(pcommon.NewTimestampFromTime(t0.Add(time.Second)))
	lr2.SetSeverityText("ERROR")
	m := lr2.Body().SetEmptyMap()
	m.PutStr("msg", "payment failed")
	m.PutDouble("amount", 12.5)
	return plogotlp.NewExportRequestFromLogs(ld)
}

func TestMap(t *testing.T) {
	recs := Map(sample().Logs())
	if len(recs) != 2 {
		t.Fatalf("%d records", len(recs))
	}
	want := `{"message":"card declined","http":{"request":{"header":{"x-request-id":["req-42"]},"id":"req-42"}},"order":{"items":3},"service":{"name":"checkout"},"k8s":{"pod":{"name":"checkout-7d9f"}},"log":{"level":"warn","logger":"com.example.checkout"},"trace":{"id":"4bf92f3577b34da6a3ce929d0e0e4736"},"span":{"id":"00f067aa0ba902b7"},"@timestamp":"2026-12-06T10:00:00.123456789Z"}`
	if string(recs[0].Line) != want {
		t.Errorf("record 1:\n got %s\nwant %s", recs[0].Line, want)
	}
	want = `{"msg":"payment failed","amount":12.5,"service":{"name":"checkout"},"k8s":{"pod":{"name":"checkout-7d9f"}},"log":{"level":"error","logger":"com.example.checkout"},"@timestamp":"2026-12-06T10:00:01.123456789Z"}`
	if string(recs[1].Line) != want {
		t.Errorf("record 2:\n got %s\nwant %s", recs[1].Line, want)
	}
}

type got struct {
	mu   sync.Mutex
	recs []Record
	err  error
}

func serve(t *testing.T, cfg Config) (*Server, *got) {
	t.Helper()
	cfg.HTTPListen, cfg.GRPCListen = "127.0.0.1:0", "127.0.0.1:0"
	g := &got{}
	s, err := Listen(cfg, func(_ context.Context, recs []Record) error {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.err != nil {
			return g.err
		}
		g.recs = append(g.recs, recs...)
		return nil
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, g
}

func post(t *testing.T, url, ct, enc string, body []byte) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", ct)
	if enc != "" {
		req.Header.Set("Content-Encoding", enc)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func gz(b []byte) []byte {
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	w.Write(b)
	w.Close()
	return out.Bytes()
}

// Protobuf and JSON over HTTP, gzip or not, and gRPC: the same records;
// a full buffer is 429 with Retry-After (gRPC: RESOURCE_EXHAUSTED with
// RetryInfo); what cannot be read is 400, 413 or 415.
func TestHTTPAndGRPC(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxBodyBytes, cfg.MaxDecompressedBytes = 64<<10, 256<<10
	s, g := serve(t, cfg)
	url := "http://" + s.HTTPAddr() + "/v1/logs"
	pb, _ := sample().MarshalProto()
	js, _ := sample().MarshalJSON()
	for _, c := range []struct {
		ct, enc string
		body    []byte
	}{
		{"application/x-protobuf", "", pb}, {"application/x-protobuf", "gzip", gz(pb)}, {"application/json", "", js}, {"application/json", "gzip", gz(js)},
	} {
		if resp := post(t, url, c.ct, c.enc, c.body); resp.StatusCode != 200 || resp.Header.Get("Content-Type") != c.ct {
			t.Fatalf("%s %s: %s %s", c.ct, c.enc, resp.Status, resp.Header.Get("Content-Type"))
		}
	}
	conn, err := grpc.NewClient(s.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := plogotlp.NewGRPCClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := client.Export(ctx, sample()); err != nil {
		t.Fatal(err)
	}
	g.mu.Lock()
	n := len(g.recs)
	for i := 2; i < n; i++ {
		if string(g.recs[i].Line) != string(g.recs[i%2].Line) {
			t.Fatalf("record %d differs:\n%s\n%s", i, g.recs[i].Line, g.recs[i%2].Line)
		}
	}
	g.err = pipeline.ErrFull
	g.mu.Unlock()
	if n != 10 {
		t.Fatalf("%d records, want 10", n)
	}
	if resp := post(t, url, "application/x-protobuf", "", pb); resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("full buffer: %s, Retry-After %q", resp.Status, resp.Header.Get("Retry-After"))
	}
	_, err = client.Export(ctx, sample())
	st := status.Convert(err)
	retry := false
	for _, d := range st.Details() {
		_, retry = d.(*errdetails.RetryInfo)
	}
	if st.Code() != codes.ResourceExhausted || !retry {
		t.Fatalf("full buffer over gRPC: %v, retry info %v", err, retry)
	}
	bomb := gz(bytes.Repeat([]byte{0}, 1<<20))
	for _, c := range []struct {
		ct, enc string
		body    []byte
		code    int
	}{
		{"application/x-protobuf", "", []byte("not protobuf at all \xff\xff\xff"), 400},
		{"application/json", "", []byte(`{"resourceLogs":[{`), 400},
		{"text/plain", "", []byte("hello"), 415},
		{"application/x-protobuf", "br", pb, 415},
		{"application/x-protobuf", "", bytes.Repeat([]byte{0}, 100<<10), 413},
		{"application/x-protobuf", "gzip", bomb, 413},
		{"application/x-protobuf", "gzip", []byte("not gzip"), 400},
	} {
		if resp := post(t, url, c.ct, c.enc, c.body); resp.StatusCode != c.code {
			t.Fatalf("%s %s %q: %s, want %d", c.ct, c.enc, c.body[:min(len(c.body), 20)], resp.Status, c.code)
		}
	}
	if resp, _ := http.Get(url); resp.StatusCode != 405 {
		t.Fatalf("GET: %s", resp.Status)
	}
}
