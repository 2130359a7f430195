// Package ingest is the collector's HTTP receiver. Shippers POST batches
// (NDJSON to /v1/events, the binary framing to /v2/events; gzip, zstd or
// s2 Content-Encoding, or none); every line is processed into a
// record and the batch is answered 200 only once the sink made it durable,
// 429 with Retry-After when the sink is full, so backpressure reaches the
// shipper and nothing is acknowledged that could still be lost.
package ingest

import (
	"bytes"
	"compress/gzip"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"

	"github.com/logweave/logweave/filters"
	"github.com/logweave/logweave/inputs/gelf"
	"github.com/logweave/logweave/pipeline"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// zstdReaders are reused: a decoder's tables are costly to build per request.
// The body read is bounded after decompression (max_body_bytes), and the
// window to 8 MiB, so a zstd bomb is refused like a gzip one.
var zstdReaders sync.Pool

var (
	requests = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "logweave_ingest_requests_total", Help: "Ingest HTTP requests by status code."}, []string{"code"})
	received = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "logweave_events_received_total", Help: "Events received and made durable, by input (http, gelf)."}, []string{"input"})
	parseFailures = promauto.NewCounter(prometheus.CounterOpts{
		Name: "logweave_events_parse_failures_total", Help: "Events whose line was not a JSON object (tagged _jsonparsefailure)."})
	busy = promauto.NewCounter(prometheus.CounterOpts{
		Name: "logweave_ingest_busy_total", Help: "Requests answered 429 because http.max_concurrent_requests were in progress."})
)

// Handler serves POST /v1/events (NDJSON: envelopes, or plain lines) and
// POST /v2/events (the shipper's binary framing, pipeline.FramesContentType).
//
// Memory is bounded whatever a client sends: the body is limited as sent
// and again once decompressed (MaxBodyBytes each), the lines of a request
// (MaxLines), and the requests processed at once (MaxConcurrent; others
// wait up to QueueWait for a turn, then get 429 + Retry-After). Lines are
// processed and written to the sink ChunkLines at a time, so what a request
// holds besides its body does not grow with its number of lines.
type Handler struct {
	Processor     *filters.Processor
	Sink          pipeline.Sink
	MaxBodyBytes  int64         // as sent and after decompression; default 8 MiB
	MaxLines      int           // per request; default 100,000
	MaxConcurrent int           // requests processed at once; default 8
	QueueWait     time.Duration // how long a request waits for a turn; default 1s
	ChunkLines    int           // lines per sink write; default 2,000
	RetryAfter    int           // seconds, sent with 429; default 1
	Token         string        // when set, required as "Authorization: Bearer <token>"
	Log           *slog.Logger

	pool    sync.Pool
	semOnce sync.Once
	sem     chan struct{}
}

// Defaults of the Handler's limits.
const (
	DefaultMaxBodyBytes  = 8 << 20
	DefaultMaxLines      = 100_000
	DefaultMaxConcurrent = 8
	DefaultQueueWait     = time.Second
	DefaultChunkLines    = 2000
)

type scratch struct {
	body  []byte
	wire  []byte // an S2 body as sent
	recs  []pipeline.Record
	docs  []byte
	spans [][3]int // of each record in docs: Doc from [0] to [1], Trace to [2]
	ev    pipeline.Event
	env   pipeline.Envelope
	line  []byte // an envelope's line, unescaped
}

// Received counts n events of input made durable
// (logweave_events_received_total{input}).
func Received(input string, n int) { received.WithLabelValues(input).Add(float64(n)) }

// Authorized reports whether r carries "Authorization: Bearer <token>"
// (always, when token is empty), compared in constant time.
func Authorized(r *http.Request, token string) bool {
	if token == "" {
		return true
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		h.fail(w, http.StatusMethodNotAllowed, "use POST")
		return
	}
	if !Authorized(r, h.Token) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="logweave"`)
		h.fail(w, http.StatusUnauthorized, "missing or wrong bearer token")
		return
	}
	h.semOnce.Do(func() { h.sem = make(chan struct{}, orDefault(h.MaxConcurrent, DefaultMaxConcurrent)) })
	select {
	case h.sem <- struct{}{}:
	default:
		t := time.NewTimer(orDefault(h.QueueWait, DefaultQueueWait))
		select {
		case h.sem <- struct{}{}:
			t.Stop()
		case <-t.C:
			busy.Inc()
			h.tooMany(w, fmt.Sprintf("%d requests in progress; retry later", cap(h.sem)))
			return
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	defer func() { <-h.sem }()

	limit := orDefault(h.MaxBodyBytes, DefaultMaxBodyBytes)
	maxLines := orDefault(h.MaxLines, DefaultMaxLines)
	s, _ := h.pool.Get().(*scratch)
	if s == nil {
		s = &scratch{}
	}
	defer h.release(s)

	// The body as sent is bounded too: 200 MB of empty gzip frames
	// decompress to nothing, and are not read to the end.
	wire := &limitedBody{r: r.Body, left: limit}
	var body io.Reader = wire
	s2Body := false
	switch r.Header.Get("Content-Encoding") {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(wire)
		if err != nil {
			h.fail(w, wire.status(http.StatusBadRequest), "bad gzip body: "+err.Error())
			return
		}
		body = zr
	case "s2":
		s2Body = true
	case "zstd":
		zr, _ := zstdReaders.Get().(*zstd.Decoder)
		if zr == nil {
			var err error
			if zr, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(8<<20)); err != nil {
				h.fail(w, http.StatusInternalServerError, err.Error())
				return
			}
		}
		if err := zr.Reset(wire); err != nil {
			h.fail(w, wire.status(http.StatusBadRequest), "bad zstd body: "+err.Error())
			return
		}
		defer zstdReaders.Put(zr)
		body = zr
	default:
		h.fail(w, http.StatusUnsupportedMediaType, "unsupported Content-Encoding "+r.Header.Get("Content-Encoding"))
		return
	}
	hint := int64(64 << 10)
	if r.ContentLength > 0 {
		hint = r.ContentLength // as sent: exact for plain bodies
	}
	var err error
	if s2Body {
		// An S2 block says its decoded length first: bounded before
		// anything is decoded.
		s.wire, err = readUpTo(s.wire[:0], body, limit+1, hint)
		if err == nil {
			var n int
			if n, err = s2.DecodedLen(s.wire); err == nil {
				if int64(n) > limit {
					h.fail(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes once decompressed; send smaller batches", limit))
					return
				}
				if cap(s.body) < n {
					s.body = make([]byte, n)
				}
				s.body, err = s2.Decode(s.body[:cap(s.body)], s.wire)
			}
			if err != nil && !wire.over {
				h.fail(w, http.StatusBadRequest, "bad s2 body: "+err.Error())
				return
			}
		}
	} else {
		s.body, err = readUpTo(s.body[:0], body, limit+1, hint)
	}
	n := int64(len(s.body))
	if err != nil {
		if wire.over {
			h.fail(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes as sent; send smaller batches", limit))
			return
		}
		h.fail(w, http.StatusBadRequest, "reading body: "+err.Error())
		return
	}
	if n > limit {
		h.fail(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes once decompressed; send smaller batches", limit))
		return
	}
	// The shipper's binary framing (POSTed to /v2/events), or NDJSON:
	// envelopes, or plain lines.
	var frames *pipeline.FrameReader
	lines := 0
	if framed(r) {
		if lines, err = pipeline.CountFrames(s.body); err == nil {
			frames, err = pipeline.NewFrameReader(s.body)
		}
		if err != nil {
			h.fail(w, http.StatusBadRequest, err.Error())
			return
		}
	} else {
		lines = bytes.Count(s.body, []byte{'\n'})
	}
	if lines > maxLines {
		h.fail(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("%d lines in one request, more than %d; send smaller batches", lines, maxLines))
		return
	}

	// Process the lines a chunk at a time; each chunk's documents go into
	// one arena so its records can alias it. A chunk written before a
	// later one fails is written again when the client retries: same ids,
	// so it overwrites itself.
	chunk := orDefault(h.ChunkLines, DefaultChunkLines)
	accepted, failures := 0, 0
	write := func() bool {
		if len(s.recs) == 0 {
			return true
		}
		for i := range s.recs {
			sp := s.spans[i]
			s.recs[i].Doc, s.recs[i].Trace = s.docs[sp[0]:sp[1]:sp[1]], s.docs[sp[1]:sp[2]:sp[2]]
		}
		if err := h.Sink.Write(r.Context(), s.recs); err != nil {
			if errors.Is(err, pipeline.ErrFull) {
				h.tooMany(w, "buffer full, retry later: "+err.Error())
				return false
			}
			if errors.Is(err, pipeline.ErrTooLarge) {
				h.fail(w, http.StatusRequestEntityTooLarge, "send smaller batches: "+err.Error())
				return false
			}
			h.logger().Error("ingest: sink write failed", "error", err, "events", len(s.recs))
			h.fail(w, http.StatusServiceUnavailable, "could not store the batch: "+err.Error())
			return false
		}
		accepted += len(s.recs)
		s.recs, s.docs, s.spans = s.recs[:0], s.docs[:0], s.spans[:0]
		return true
	}
	s.recs, s.docs, s.spans = s.recs[:0], s.docs[:0], s.spans[:0]
	for rest := s.body; ; {
		if frames != nil {
			if !frames.Next(&s.env) {
				break
			}
		} else {
			if len(rest) == 0 {
				break
			}
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
			// The line is unescaped into storage of its own (s.env.Line
			// may alias a body, this one or one before).
			s.env.Line = s.line[:0]
			if pipeline.ParseEnvelope(line, &s.env) {
				s.line = s.env.Line
			} else {
				s.env = pipeline.Envelope{Line: line}
			}
		}
		if s.env.Format == "gelf" {
			// A GELF message a shipper spooled: mapped here, where the
			// CPU is. One that is not a JSON object is kept as its text,
			// tagged _gelfparsefailure.
			s.env.Line, _ = gelf.Map(s.env.Line)
		}
		// Encoded straight into the batch's documents when they have
		// room (copied in when it outgrew them).
		start := len(s.docs)
		rec := h.Processor.Process(&s.env, &s.ev, s.docs[start:])
		if n := len(rec.Doc) + len(rec.Trace); n <= cap(s.docs)-start {
			s.docs = s.docs[:start+n]
		} else {
			s.docs = append(s.docs, rec.Doc...)
			s.docs = append(s.docs, rec.Trace...)
		}
		if s.ev.HasTag(filters.TagJSONParseFailure) {
			failures++
		}
		s.spans = append(s.spans, [3]int{start, start + len(rec.Doc), len(s.docs)})
		rec.Doc, rec.Trace = nil, nil
		s.recs = append(s.recs, rec)
		if len(s.recs) >= chunk && !write() {
			return
		}
	}
	if !write() {
		return
	}
	Received("http", accepted)
	parseFailures.Add(float64(failures))
	requests.WithLabelValues("200").Inc()
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"accepted":%d}`+"\n", accepted)
}

// framed reports whether the body is in the binary framing: POSTed to
// /v2/events (whatever a proxy did to its Content-Type: a framed body read
// as NDJSON would be indexed as garbage lines), or sent with its type.
func framed(r *http.Request) bool {
	if strings.HasSuffix(r.URL.Path, "/v2/events") {
		return true
	}
	ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";")
	return strings.TrimSpace(ct) == pipeline.FramesContentType
}

// readUpTo reads r into dst until EOF or max bytes, growing dst by
// doubling from about hint but never past max: a body at the limit costs
// the limit, not twice it.
func readUpTo(dst []byte, r io.Reader, max, hint int64) ([]byte, error) {
	if int64(cap(dst)) < min(hint+512, max) {
		dst = make([]byte, 0, min(hint+512, max))
	}
	for int64(len(dst)) < max {
		if len(dst) == cap(dst) {
			grown := make([]byte, len(dst), min(int64(cap(dst))*2, max))
			copy(grown, dst)
			dst = grown
		}
		n, err := r.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst, err
		}
	}
	return dst, nil
}

// release returns s to the pool, unless a large body made it large: a
// burst of big requests does not stay in memory afterwards.
func (h *Handler) release(s *scratch) {
	clear(s.recs) // drop the ids and index names
	if cap(s.body) > 1<<20 || cap(s.docs) > 4<<20 || cap(s.line) > 1<<20 || cap(s.wire) > 1<<20 {
		return
	}
	h.pool.Put(s)
}

// limitedBody reads at most left bytes of a request body as sent, and
// notes when the client sent more.
type limitedBody struct {
	r    io.Reader
	left int64
	over bool
}

var errBodyTooLarge = errors.New("body too large")

func (l *limitedBody) Read(p []byte) (int, error) {
	if l.left <= 0 {
		var one [1]byte
		if n, _ := l.r.Read(one[:]); n > 0 {
			l.over = true
			return 0, errBodyTooLarge
		}
		return 0, io.EOF
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

// status is 413 when the body went over the limit, else fallback.
func (l *limitedBody) status(fallback int) int {
	if l.over {
		return http.StatusRequestEntityTooLarge
	}
	return fallback
}

func (h *Handler) tooMany(w http.ResponseWriter, msg string) {
	w.Header().Set("Retry-After", strconv.Itoa(orDefault(h.RetryAfter, 1)))
	h.fail(w, http.StatusTooManyRequests, msg)
}

func orDefault[T int | int64 | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
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
