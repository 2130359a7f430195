package ingest_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"

	"github.com/logweave/logweave/filters"
	"github.com/logweave/logweave/inputs/ingest"
	"github.com/logweave/logweave/pipeline"
	"github.com/tidwall/gjson"
)

type recordingSink struct {
	mu   sync.Mutex
	recs []pipeline.Record
	err  error
}

func (s *recordingSink) Write(_ context.Context, recs []pipeline.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	for _, r := range recs {
		r.Doc, r.Trace = bytes.Clone(r.Doc), bytes.Clone(r.Trace) // the handler reuses its buffers
		s.recs = append(s.recs, r)
	}
	return nil
}

func newHandler(sink pipeline.Sink) *ingest.Handler {
	idx, _ := pipeline.ParseIndexPattern("logs-%{+yyyy.MM.dd}")
	p := filters.NewProcessor(idx, nil)
	p.TraceFields = true
	return &ingest.Handler{Processor: p, Sink: sink, MaxBodyBytes: 4096}
}

func post(h http.Handler, body []byte, enc string) *httptest.ResponseRecorder {
	switch enc {
	case "gzip":
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Write(body)
		zw.Close()
		body = b.Bytes()
	case "s2":
		body = s2.Encode(nil, body)
	case "zstd":
		zw, _ := zstd.NewWriter(nil)
		body = zw.EncodeAll(body, nil)
	}
	req := httptest.NewRequest(http.MethodPost, "/v1/events", bytes.NewReader(body))
	if enc != "" {
		req.Header.Set("Content-Encoding", enc)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestIngestEnvelopesAndPlainLines(t *testing.T) {
	sink := &recordingSink{}
	h := newHandler(sink)
	env := pipeline.Envelope{ID: "e1", Host: "h", Path: "/a.log", Offset: 5, Line: []byte(`{"msg":"one","ts":1764115200000}`)}
	body := append(env.AppendJSON(nil), "\n\n"+`{"message":"posted directly"}`+"\r\nnot json\n"...)
	for _, enc := range []string{"", "gzip", "zstd", "zstd", "s2", "s2"} { // twice: pooled decoders and buffers
		sink.recs = nil
		res := post(h, body, enc)
		if res.Code != 200 || !strings.Contains(res.Body.String(), `"accepted":3`) {
			t.Fatalf("Content-Encoding %q: %d %s", enc, res.Code, res.Body)
		}
		if len(sink.recs) != 3 {
			t.Fatalf("got %d records", len(sink.recs))
		}
		if sink.recs[0].ID != "e1" || gjson.GetBytes(sink.recs[0].Doc, "message").String() != "one" || sink.recs[0].Index != "logs-2025.11.26" {
			t.Fatalf("envelope record: %+v %s", sink.recs[0], sink.recs[0].Doc)
		}
		if gjson.GetBytes(sink.recs[1].Doc, "message").String() != "posted directly" || sink.recs[1].ID == "" {
			t.Fatalf("plain JSON record: %s", sink.recs[1].Doc)
		}
		if gjson.GetBytes(sink.recs[2].Doc, "tags.0").String() != filters.TagJSONParseFailure {
			t.Fatalf("plain text record: %s", sink.recs[2].Doc)
		}
		// Records of one request must not share document memory.
		if string(sink.recs[0].Doc) == string(sink.recs[1].Doc) {
			t.Fatal("records alias each other")
		}
	}
}

func TestIngestAnswers429WhenSinkFull(t *testing.T) {
	res := post(newHandler(&recordingSink{err: pipeline.ErrFull}), []byte("x\n"), "")
	if res.Code != http.StatusTooManyRequests || res.Header().Get("Retry-After") == "" {
		t.Fatalf("got %d, Retry-After %q", res.Code, res.Header().Get("Retry-After"))
	}
}

func TestIngestRejectsBadRequests(t *testing.T) {
	h := newHandler(&recordingSink{})
	if res := post(h, bytes.Repeat([]byte("x"), 5000), ""); res.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized body: %d", res.Code)
	}
	for _, enc := range []string{"gzip", "zstd", "s2"} {
		// 10 MB of lines, small compressed: refused past max_body_bytes
		// without inflating it all (s2: by the length its block declares)
		if res := post(h, bytes.Repeat([]byte("x\n"), 5<<20), enc); res.Code != http.StatusRequestEntityTooLarge {
			t.Fatalf("oversized after %s decompression: %d", enc, res.Code)
		}
	}
	req := httptest.NewRequest(http.MethodPost, "/v1/events", strings.NewReader("not gzip"))
	req.Header.Set("Content-Encoding", "gzip")
	res := httptest.NewRecorder()
	h.ServeHTTP(res, req)
	if res.Code != http.StatusBadRequest {
		t.Fatalf("bad gzip: %d", res.Code)
	}
	req = httptest.NewRequest(http.MethodPost, "/v1/events", strings.NewReader("not zstd at all"))
	req.Header.Set("Content-Encoding", "zstd")
	res = httptest.NewRecorder()
	h.ServeHTTP(res, req)
	if res.Code != http.StatusBadRequest {
		t.Fatalf("bad zstd: %d", res.Code)
	}
	for _, bad := range [][]byte{[]byte("not s2"), s2.Encode(nil, []byte("cut short, this block is"))[:10], {0xff, 0xff, 0xff, 0xff, 0x0f}} {
		req = httptest.NewRequest(http.MethodPost, "/v1/events", bytes.NewReader(bad))
		req.Header.Set("Content-Encoding", "s2")
		res = httptest.NewRecorder()
		h.ServeHTTP(res, req)
		if res.Code != http.StatusBadRequest && res.Code != http.StatusRequestEntityTooLarge {
			t.Fatalf("bad s2 %x: %d %s", bad, res.Code, res.Body)
		}
	}
	res = httptest.NewRecorder()
	h.ServeHTTP(res, httptest.NewRequest(http.MethodGet, "/v1/events", nil))
	if res.Code != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %d", res.Code)
	}
}

// A sender-chosen id Elasticsearch would refuse (over 512 bytes, or with
// spaces) is replaced by a content id at ingest, the same on a resend; a
// valid one is kept.
func TestInvalidEnvelopeIDsAreReplaced(t *testing.T) {
	sink := &recordingSink{}
	h := newHandler(sink)
	h.MaxBodyBytes = 1 << 20
	long := strings.Repeat("x", 600)
	body := []byte(`{"id":"` + long + `","ts":"2026-11-26T00:00:00Z","line":"a"}` + "\n" +
		`{"id":"has space","ts":"2026-11-26T00:00:00Z","line":"b"}` + "\n" +
		`{"id":"fine-id_1","ts":"2026-11-26T00:00:00Z","line":"c"}` + "\n")
	for round := 0; round < 2; round++ {
		if w := post(h, body, ""); w.Code != 200 {
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
	if len(sink.recs) != 6 {
		t.Fatalf("%d records", len(sink.recs))
	}
	for i, r := range sink.recs[:3] {
		if !pipeline.ValidID(r.ID) || r.ID != sink.recs[i+3].ID {
			t.Errorf("record %d: id %.40q (resent: %.40q)", i, r.ID, sink.recs[i+3].ID)
		}
		if got := gjson.GetBytes(r.Doc, "event.id").String(); got != r.ID {
			t.Errorf("record %d: event.id %q, _id %q", i, got, r.ID)
		}
	}
	if sink.recs[2].ID != "fine-id_1" {
		t.Errorf("a valid id was replaced: %q", sink.recs[2].ID)
	}
	if sink.recs[0].ID == sink.recs[1].ID {
		t.Error("two different lines got one id")
	}
}

// A rolling upgrade, collectors first: what a shipper of the version before
// the binary framing sends (NDJSON envelopes on /v1/events) and what this
// one sends (the framing on /v2/events) become the same records — same
// ids, documents, indices and trace fields — so a batch sent again across
// the upgrade overwrites itself. Requests alternate so a pooled scratch
// goes from one format to the other.
func TestFramedAndNDJSONBatchesGiveTheSameRecords(t *testing.T) {
	at := time.Date(2026, 12, 6, 4, 0, 0, 123456789, time.UTC)
	var envs []pipeline.Envelope
	for i := range 300 {
		e := pipeline.Envelope{ID: fmt.Sprintf("id-%d", i), ReadAt: at, Host: "node-1", Path: fmt.Sprintf("/var/log/%d.log", i%3), Offset: int64(i * 100),
			Line: []byte(fmt.Sprintf(`{"msg":"line \"%d\"\t\u00e9","request_id":"r-%d","level":"WARN","service":"s%d"}`, i, i%7, i%4))}
		switch i % 10 {
		case 3:
			e.Line = []byte(fmt.Sprintf("plain text %d with \\ and \"quotes\" request_id=r-%d", i, i%7))
		case 5:
			e.Fields = []byte(`{"stream":"stderr","kubernetes.pod.name":"web-1"}`)
		case 7:
			e.ReadAt = time.Time{}
		case 9:
			e.Format, e.Path, e.Offset = "gelf", "", 0
			e.Line = []byte(fmt.Sprintf(`{"version":"1.1","host":"h","short_message":"gelf %d","_request_id":"r-%d"}`, i, i%7))
		}
		envs = append(envs, e)
	}
	var ndjson, framed []byte
	var w pipeline.FrameWriter
	for i := range envs {
		ndjson = append(envs[i].AppendJSON(ndjson), '\n')
		framed = w.Append(framed, &envs[i])
	}
	sink := &recordingSink{}
	h := newHandler(sink)
	h.MaxBodyBytes = 1 << 20
	h.Processor.Now = func() time.Time { return at.Add(time.Hour) }
	send := func(body []byte, frames bool) []pipeline.Record {
		sink.recs = nil
		req := httptest.NewRequest(http.MethodPost, "/v1/events", bytes.NewReader(body))
		if frames {
			req = httptest.NewRequest(http.MethodPost, "/v2/events", bytes.NewReader(body))
			req.Header.Set("Content-Type", pipeline.FramesContentType)
		}
		res := httptest.NewRecorder()
		h.ServeHTTP(res, req)
		if res.Code != 200 {
			t.Fatalf("framed=%v: %d %s", frames, res.Code, res.Body)
		}
		return sink.recs
	}
	want := send(ndjson, false)
	for round := range 3 {
		for _, frames := range []bool{true, false} {
			got := send(framed, frames)
			if !frames {
				got = send(ndjson, false)
			}
			if len(got) != len(want) {
				t.Fatalf("round %d framed=%v: %d records, want %d", round, frames, len(got), len(want))
			}
			for i := range got {
				g, w := got[i], want[i]
				if g.ID != w.ID || g.Index != w.Index || g.Key != w.Key || !bytes.Equal(g.Doc, w.Doc) || !bytes.Equal(g.Trace, w.Trace) {
					t.Fatalf("round %d framed=%v record %d:\n got %s %s %s %s\nwant %s %s %s %s", round, frames, i, g.ID, g.Index, g.Key, g.Doc, w.ID, w.Index, w.Key, w.Doc)
				}
			}
		}
	}
	if len(want[0].Trace) < 10 {
		t.Fatalf("the record carries no trace fields: %x", want[0].Trace)
	}
	if gjson.GetBytes(want[0].Doc, "message").String() != `line "0"`+"\té" || gjson.GetBytes(want[5].Doc, "stream").String() != "stderr" {
		t.Fatalf("records: %s / %s", want[0].Doc, want[5].Doc)
	}

	// On /v2/events the body is the framing whatever its Content-Type
	// (a proxy may have changed it); NDJSON there is refused, not indexed
	// as garbage.
	for _, body := range [][]byte{framed, ndjson} {
		sink.recs = nil
		req := httptest.NewRequest(http.MethodPost, "/v2/events", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/octet-stream")
		res := httptest.NewRecorder()
		h.ServeHTTP(res, req)
		if want := len(envs); bytes.Equal(body, ndjson) {
			if res.Code != 400 || len(sink.recs) != 0 {
				t.Fatalf("NDJSON on /v2/events: %d %s, %d records", res.Code, res.Body, len(sink.recs))
			}
		} else if res.Code != 200 || len(sink.recs) != want {
			t.Fatalf("framing without its Content-Type: %d %s, %d records", res.Code, res.Body, len(sink.recs))
		}
	}

	// A broken framing is refused whole, before anything is written.
	sink.recs = nil
	req := httptest.NewRequest(http.MethodPost, "/v2/events", bytes.NewReader(framed[:len(framed)-3]))
	req.Header.Set("Content-Type", pipeline.FramesContentType)
	res := httptest.NewRecorder()
	h.ServeHTTP(res, req)
	if res.Code != 400 || len(sink.recs) != 0 || !strings.Contains(res.Body.String(), "malformed batch framing") {
		t.Fatalf("truncated framing: %d %s, %d records written", res.Code, res.Body, len(sink.recs))
	}
}
