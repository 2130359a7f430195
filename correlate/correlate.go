// Package correlate assembles request traces: the events of one request
// (one trace.id, the X-Request-ID the gateway stamped) across services
// become one trace document with a span per service.
//
// A Correlator is fed the indexed documents of one indexer, in any order. A
// trace is complete when its request has been quiet for Window; when more
// than MaxOpenTraces are open, the oldest is let go early. Events that come
// after their trace was let go (late, evicted, or seen by another indexer
// before a rebalance or a restart) make a partial trace of the same id:
// the writer merges it into the trace document already written (Merge,
// ParseTrace), so one request keeps one correct trace document.
package correlate

import (
	"sort"
	"strconv"
	"time"

	"github.com/tidwall/gjson"

	"github.com/logweave/logweave/pipeline"
)

// Config bounds a Correlator.
type Config struct {
	Window        time.Duration
	MaxOpenTraces int
	// MaxBytes bounds the memory the open traces hold (estimated per
	// trace, see TraceCost); past it the oldest are let go early, as past
	// MaxOpenTraces. 0: no bound but the count.
	MaxBytes int64
}

// Estimated heap of an open trace: TraceBaseCost, and TraceEventCost per
// event (its id kept to count it once, its part kept for merging, its span
// folded in). Measured with BenchmarkOpenTraceBytes (collector-like events
// with 27-character ids: ~2.2 KB for 4.5 events); the process's RSS is up
// to twice the heap (the garbage collector's headroom).
const (
	TraceBaseCost  = 600
	TraceEventCost = 350
)

// TraceCost is the estimated heap of an open trace of id with n events.
func TraceCost(id string, n int) int64 {
	return int64(TraceBaseCost + len(id) + TraceEventCost*n)
}

// Span is what one service did for a request.
type Span struct {
	Service     string
	Start, End  time.Time
	Events      int
	Errors      int
	Level       string // the highest level seen
	levelRank   int
	firstArrive int // order of arrival, to order spans that start together
}

// Entry is the request as the gateway logged it.
type Entry struct {
	Method, Path, Client string
	Status               int
	Duration             time.Duration
}

// Trace is one request.
type Trace struct {
	ID         string
	Start, End time.Time
	Events     int
	Spans      []Span
	Error      bool
	Entry      *Entry

	lastSeen   time.Time // wall clock of the last event, for the window
	prev, next *Trace    // in the correlator's list, least recently seen first

	// The events counted, by event.id, so an event delivered twice (Kafka
	// redelivers what was not committed, also to another indexer after a
	// rebalance) counts once: ids lists them in order (the first
	// MaxEventIDs are stored in the document, to merge later parts
	// against); parts holds this part's events one by one for Merge.
	ids   []string
	idSet map[string]struct{}
	parts []partEvent
	cost  int64 // estimated heap, counted in the correlator's bytes
}

type partEvent struct {
	id   string
	span Span
}

// MaxEventIDs is how many event ids a trace document keeps for telling
// duplicates in later parts (beyond, a redelivered event may count twice).
const MaxEventIDs = 1000

// counted reports whether the event id was counted, and marks it.
func (t *Trace) counted(id string) bool {
	if id == "" {
		return false
	}
	if _, ok := t.idSet[id]; ok {
		return true
	}
	if t.idSet == nil {
		t.idSet = map[string]struct{}{}
	}
	t.idSet[id] = struct{}{}
	t.ids = append(t.ids, id)
	return false
}

// Services lists the services in the order they first appear in the
// request (their span's start).
func (t *Trace) Services() []string {
	out := make([]string, len(t.Spans))
	for i, s := range t.sortedSpans() {
		out[i] = s.Service
	}
	return out
}

func (t *Trace) sortedSpans() []Span {
	sp := append([]Span(nil), t.Spans...)
	sort.SliceStable(sp, func(i, j int) bool {
		if !sp[i].Start.Equal(sp[j].Start) {
			return sp[i].Start.Before(sp[j].Start)
		}
		return sp[i].firstArrive < sp[j].firstArrive
	})
	return sp
}

// Duration is from the first event to the last.
func (t *Trace) Duration() time.Duration { return t.End.Sub(t.Start) }

// Correlator holds the open traces of one indexer. It is not safe for
// concurrent use.
type Correlator struct {
	cfg        Config
	open       map[string]*Trace
	head, tail *Trace // least and most recently seen
	arrivals   int
	bytes      int64 // estimated heap of the open traces
}

// Bytes is the estimated heap the open traces hold.
func (c *Correlator) Bytes() int64 { return c.bytes }

// New returns an empty correlator.
func New(cfg Config) *Correlator {
	if cfg.Window <= 0 {
		cfg.Window = 30 * time.Second
	}
	if cfg.MaxOpenTraces <= 0 {
		cfg.MaxOpenTraces = 100000
	}
	return &Correlator{cfg: cfg, open: map[string]*Trace{}}
}

// Open is the number of traces held.
func (c *Correlator) Open() int { return len(c.open) }

// docFields are read from each indexed document.
var docFields = []string{"trace.id", "@timestamp", "service.name", "log.level", "http.response.status_code",
	"event.dataset", "http.request.method", "url.path", "source.ip", "event.duration", "event.id"}

// Add takes one indexed document (encoded JSON, with the fields the
// filters write) seen at now, and returns the traces it pushed out of
// memory (MaxOpenTraces), oldest first. Documents without trace.id are
// ignored.
func (c *Correlator) Add(doc []byte, now time.Time) []*Trace {
	f := gjson.GetManyBytes(doc, docFields...)
	id := f[0].String()
	if id == "" {
		return nil
	}
	ts, err := time.Parse(time.RFC3339Nano, f[1].String())
	if err != nil {
		return nil
	}
	eventID := f[10].String()
	t := c.open[id]
	if t != nil {
		c.unlink(t)
	} else {
		t = &Trace{ID: id, Start: ts, End: ts}
		c.open[id] = t
	}
	t.lastSeen = now
	c.pushBack(t)
	if t.counted(eventID) {
		return nil // delivered again
	}

	service := f[2].String()
	if service == "" {
		service = "unknown"
	}
	level := f[3].String()
	status := int(f[4].Int())
	isError := levelRank(level) >= levelRank("error") || status >= 500
	c.arrivals++
	start := ts
	gateway := f[5].String() == "nginx.access"
	if d := time.Duration(f[9].Int()); gateway && d > 0 {
		start = ts.Add(-d) // nginx logs when the response went out; it took $request_time
	}
	if start.Before(t.Start) {
		t.Start = start
	}
	span := Span{Service: service, Start: start, End: ts, Events: 1, Errors: b2i(isError), Level: level, levelRank: levelRank(level), firstArrive: c.arrivals}
	t.add(span)
	t.parts = append(t.parts, partEvent{id: eventID, span: span})
	if gateway && t.Entry == nil {
		t.Entry = &Entry{Method: f[6].String(), Path: f[7].String(), Client: f[8].String(), Status: status, Duration: time.Duration(f[9].Int())}
	}

	cost := TraceCost(t.ID, len(t.parts))
	c.bytes += cost - t.cost
	t.cost = cost
	var out []*Trace
	for len(c.open) > c.cfg.MaxOpenTraces || c.cfg.MaxBytes > 0 && c.bytes > c.cfg.MaxBytes && len(c.open) > 1 {
		out = append(out, c.remove(c.head))
	}
	return out
}

// add folds a one-event (or partial) span into the trace.
func (t *Trace) add(s Span) {
	if s.Start.Before(t.Start) {
		t.Start = s.Start
	}
	if s.End.After(t.End) {
		t.End = s.End
	}
	t.Events += s.Events
	t.Error = t.Error || s.Errors > 0
	for i := range t.Spans {
		sp := &t.Spans[i]
		if sp.Service != s.Service {
			continue
		}
		if s.Start.Before(sp.Start) {
			sp.Start = s.Start
		}
		if s.End.After(sp.End) {
			sp.End = s.End
		}
		sp.Events += s.Events
		sp.Errors += s.Errors
		if s.levelRank > sp.levelRank {
			sp.Level, sp.levelRank = s.Level, s.levelRank
		}
		sp.firstArrive = min(sp.firstArrive, s.firstArrive)
		return
	}
	t.Spans = append(t.Spans, s)
}

// Merge folds a later part of the same request into t (the document
// already written, read back), skipping the part's events t counted.
func (t *Trace) Merge(o *Trace) {
	for _, e := range o.parts {
		if t.counted(e.id) {
			continue
		}
		if e.span.Start.Before(t.Start) {
			t.Start = e.span.Start
		}
		t.add(e.span)
	}
	if t.Entry == nil {
		t.Entry = o.Entry
	}
}

// ParseTrace reads a trace document back (to merge a later part into it).
func ParseTrace(doc []byte) (*Trace, bool) {
	r := gjson.ParseBytes(doc)
	id := r.Get("trace.id").String()
	start, err1 := time.Parse(time.RFC3339Nano, r.Get("@timestamp").String())
	end, err2 := time.Parse(time.RFC3339Nano, r.Get("end").String())
	if id == "" || err1 != nil || err2 != nil {
		return nil, false
	}
	t := &Trace{ID: id, Start: start, End: end, Events: int(r.Get("event_count").Int()), Error: r.Get("error").Bool()}
	for _, e := range r.Get("event_ids").Array() {
		t.counted(e.String())
	}
	for i, s := range r.Get("spans").Array() {
		s0, _ := time.Parse(time.RFC3339Nano, s.Get("start").String())
		s1, _ := time.Parse(time.RFC3339Nano, s.Get("end").String())
		lv := s.Get("level").String()
		t.Spans = append(t.Spans, Span{Service: s.Get("service").String(), Start: s0, End: s1, Events: int(s.Get("event_count").Int()),
			Errors: int(s.Get("error_count").Int()), Level: lv, levelRank: levelRank(lv), firstArrive: i - 1<<30})
	}
	if m := r.Get("http.request.method"); m.Exists() {
		t.Entry = &Entry{Method: m.String(), Path: r.Get("url.path").String(), Client: r.Get("source.ip").String(),
			Status: int(r.Get("http.response.status_code").Int())}
	}
	return t, true
}

// NextExpiry is when the least recently seen open trace will have been
// quiet for the window (zero when none is open).
func (c *Correlator) NextExpiry() time.Time {
	if c.head == nil {
		return time.Time{}
	}
	return c.head.lastSeen.Add(c.cfg.Window)
}

// Expire returns the traces quiet for the window at now, oldest first.
func (c *Correlator) Expire(now time.Time) []*Trace {
	var out []*Trace
	for c.head != nil && now.Sub(c.head.lastSeen) >= c.cfg.Window {
		out = append(out, c.remove(c.head))
	}
	return out
}

// Flush returns every open trace (at shutdown or before a rebalance).
func (c *Correlator) Flush() []*Trace {
	var out []*Trace
	for c.head != nil {
		out = append(out, c.remove(c.head))
	}
	return out
}

func (c *Correlator) remove(t *Trace) *Trace {
	c.bytes -= t.cost
	t.cost = 0
	c.unlink(t)
	delete(c.open, t.ID)
	return t
}

func (c *Correlator) pushBack(t *Trace) {
	t.prev, t.next = c.tail, nil
	if c.tail != nil {
		c.tail.next = t
	} else {
		c.head = t
	}
	c.tail = t
}

func (c *Correlator) unlink(t *Trace) {
	if t.prev != nil {
		t.prev.next = t.next
	} else if c.head == t {
		c.head = t.next
	}
	if t.next != nil {
		t.next.prev = t.prev
	} else if c.tail == t {
		c.tail = t.prev
	}
	t.prev, t.next = nil, nil
}

var levelRanks = map[string]int{"trace": 1, "debug": 2, "info": 3, "notice": 4, "warn": 5, "warning": 5,
	"error": 6, "err": 6, "critical": 7, "fatal": 7, "crit": 7, "alert": 8, "emergency": 9, "panic": 9}

func levelRank(l string) int { return levelRanks[l] }

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// AppendJSON appends the trace document: what Kibana's trace views and
// `collector trace` read. Its _id is the trace id.
func (t *Trace) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"trace":{"id":`...)
	dst = appendString(dst, t.ID)
	dst = append(dst, `},"@timestamp":"`...)
	dst = appendTime(dst, t.Start)
	dst = append(dst, `","end":"`...)
	dst = appendTime(dst, t.End)
	dst = append(dst, `","duration_ms":`...)
	dst = strconv.AppendFloat(dst, float64(t.Duration().Microseconds())/1000, 'f', -1, 64)
	dst = append(dst, `,"event_count":`...)
	dst = strconv.AppendInt(dst, int64(t.Events), 10)
	dst = append(dst, `,"error":`...)
	dst = strconv.AppendBool(dst, t.Error)
	spans := t.sortedSpans()
	dst = append(dst, `,"services":[`...)
	for i, s := range spans {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, s.Service)
	}
	dst = append(dst, `],"spans":[`...)
	for i, s := range spans {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"service":`...)
		dst = appendString(dst, s.Service)
		dst = append(dst, `,"start":"`...)
		dst = appendTime(dst, s.Start)
		dst = append(dst, `","end":"`...)
		dst = appendTime(dst, s.End)
		dst = append(dst, `","duration_ms":`...)
		dst = strconv.AppendFloat(dst, float64(s.End.Sub(s.Start).Microseconds())/1000, 'f', -1, 64)
		dst = append(dst, `,"event_count":`...)
		dst = strconv.AppendInt(dst, int64(s.Events), 10)
		dst = append(dst, `,"error_count":`...)
		dst = strconv.AppendInt(dst, int64(s.Errors), 10)
		if s.Level != "" {
			dst = append(dst, `,"level":`...)
			dst = appendString(dst, s.Level)
		}
		dst = append(dst, '}')
	}
	dst = append(dst, ']')
	if len(t.ids) > 0 {
		dst = append(dst, `,"event_ids":[`...)
		for i, id := range t.ids[:min(len(t.ids), MaxEventIDs)] {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, id)
		}
		dst = append(dst, ']')
	}
	if e := t.Entry; e != nil {
		dst = append(dst, `,"http":{"request":{"method":`...)
		dst = appendString(dst, e.Method)
		dst = append(dst, `},"response":{"status_code":`...)
		dst = strconv.AppendInt(dst, int64(e.Status), 10)
		dst = append(dst, `}},"url":{"path":`...)
		dst = appendString(dst, e.Path)
		dst = append(dst, '}')
		if e.Client != "" {
			dst = append(dst, `,"source":{"ip":`...)
			dst = appendString(dst, e.Client)
			dst = append(dst, '}')
		}
	}
	return append(dst, '}')
}

func appendString(dst []byte, s string) []byte { return pipeline.AppendJSONString(dst, s) }

func appendTime(dst []byte, t time.Time) []byte {
	return t.UTC().AppendFormat(dst, "2006-01-02T15:04:05.000Z")
}
