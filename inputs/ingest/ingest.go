// Package ingest is the collector's HTTP receiver. Shippers POST NDJSON
// batches (optionally gzip) to /v1/events; every line is processed into a
// record and the batch is answered 200 only once the sink made it durable,
// 429 with Retry-After when the sink is full, so backpressure reaches the
// shipper and nothing is acknowledged that could still be lost.
package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/klauspost/compress/zstd"

	"github.com/logweave/logweave/filters"
	"github.com/logweave/logweave/inputs/gelf"
	"github.com/logweave/logweave/pipeline"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// ErrFull is returned by a Sink that cannot take more now; the client is
// told to retry later.
var ErrFull = errors.New("sink full")

// zstdReaders are reused: a decoder's tables are costly to build per request.
// The body read is bounded after decompression (max_body_bytes), and the
// window to 8 MiB, so a zstd bomb is refused like a gzip one.
var zstdReaders sync.Pool

// Sink makes records durable: Write returns nil only once they will survive
// a crash of the collector.
type Sink interface {
	Write(ctx context.Context, recs []pipeline.Record) error
}

var (
	requests = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "logweave_ingest_requests_total", Help: "Ingest HTTP requests by status code."}, []string{"code"})
	received = promauto.NewCounter(prometheus.CounterOpts{
		Name: "logweave_events_received_total", Help: "Events received and made durable."})
	parseFailures = promauto.NewCounter(prometheus.CounterOpts{
		Name: "logweave_events_parse_failures_total", Help: "Events whose line was not a JSON object (tagged _jsonparsefailure)."})
)

// Handler serves POST /v1/events.
type Handler struct {
	Processor    *filters.Processor
	Sink         Sink
	MaxBodyBytes int64  // after decompression; default 32 MiB
	RetryAfter   int    // seconds, sent with 429; default 1
	Token        string // when set, required as "Authorization: Bearer <token>"
	Log          *slog.Logger

	pool sync.Pool
}

type scratch struct {
	body []byte
	doc  []byte
	recs []pipeline.Record
	docs []byte
	ev   pipeline.Event
	env  pipeline.Envelope
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		h.fail(w, http.StatusMethodNotAllowed, "use POST")
		return
	}
	if h.Token != "" {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(h.Token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="logweave"`)
			h.fail(w, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
	}
	limit := h.MaxBodyBytes
	if limit <= 0 {
		limit = 32 << 20
	}
	s, _ := h.pool.Get().(*scratch)
	if s == nil {
		s = &scratch{}
	}
	defer h.pool.Put(s)

	var body io.Reader = r.Body
	switch r.Header.Get("Content-Encoding") {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			h.fail(w, http.StatusBadRequest, "bad gzip body: "+err.Error())
			return
		}
		body = zr
	case "zstd":
		zr, _ := zstdReaders.Get().(*zstd.Decoder)
		if zr == nil {
			var err error
			if zr, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(8<<20)); err != nil {
				h.fail(w, http.StatusInternalServerError, err.Error())
				return
			}
		}
		if err := zr.Reset(r.Body); err != nil {
			h.fail(w, http.StatusBadRequest, "bad zstd body: "+err.Error())
			return
		}
		defer zstdReaders.Put(zr)
		body = zr
	default:
		h.fail(w, http.StatusUnsupportedMediaType, "unsupported Content-Encoding "+r.Header.Get("Content-Encoding"))
		return
	}
	buf := bytes.NewBuffer(s.body[:0])
	n, err := buf.ReadFrom(io.LimitReader(body, limit+1))
	s.body = buf.Bytes()
	if err != nil {
		h.fail(w, http.StatusBadRequest, "reading body: "+err.Error())
		return
	}
	if n > limit {
		h.fail(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes; send smaller batches", limit))
		return
	}

	// Process every line; documents go into one arena so records can alias it.
	s.recs = s.recs[:0]
	s.docs = s.docs[:0]
	type span struct{ start, end int }
	var spans []span
	failures := 0
	for rest := s.body; len(rest) > 0; {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		line = bytes.TrimRight(line, "\r")
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if !pipeline.ParseEnvelope(line, &s.env) {
			s.env = pipeline.Envelope{Line: line}
		} else if s.env.Format == "gelf" {
			// A GELF message a shipper spooled: mapped here, where the
			// CPU is. One that is not a JSON object stays as it came.
			if mapped, ok := gelf.Map(s.env.Line); ok {
				s.env.Line = mapped
			}
		}
		rec := h.Processor.Process(&s.env, &s.ev, s.doc[:0])
		s.doc = rec.Doc
		if s.ev.HasTag(filters.TagJSONParseFailure) {
			failures++
		}
		start := len(s.docs)
		s.docs = append(s.docs, rec.Doc...)
		spans = append(spans, span{start, len(s.docs)})
		rec.Doc = nil
		s.recs = append(s.recs, rec)
	}
	for i := range s.recs {
		s.recs[i].Doc = s.docs[spans[i].start:spans[i].end]
	}
	if len(s.recs) > 0 {
		if err := h.Sink.Write(r.Context(), s.recs); err != nil {
			if errors.Is(err, ErrFull) {
				ra := h.RetryAfter
				if ra <= 0 {
					ra = 1
				}
				w.Header().Set("Retry-After", strconv.Itoa(ra))
				h.fail(w, http.StatusTooManyRequests, "buffer full, retry later: "+err.Error())
				return
			}
			h.logger().Error("ingest: sink write failed", "error", err, "events", len(s.recs))
			h.fail(w, http.StatusServiceUnavailable, "could not store the batch: "+err.Error())
			return
		}
	}
	received.Add(float64(len(s.recs)))
	parseFailures.Add(float64(failures))
	requests.WithLabelValues("200").Inc()
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"accepted":%d}`+"\n", len(s.recs))
}

func (h *Handler) logger() *slog.Logger {
	if h.Log != nil {
		return h.Log
	}
	return slog.Default()
}

func (h *Handler) fail(w http.ResponseWriter, code int, msg string) {
	requests.WithLabelValues(strconv.Itoa(code)).Inc()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	fmt.Fprintf(w, `{"error":%s}`+"\n", pipeline.AppendJSONString(nil, msg))
}
