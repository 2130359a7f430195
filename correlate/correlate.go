// Package correlate assembles request traces: the events of one request
// (one trace.id, the X-Request-ID the gateway stamped) across services
// become one trace document with a span per service.
//
// A Correlator is fed the indexed documents of one indexer, in any order. A
// trace is complete when its request has been quiet for Window; when more
// than MaxOpenTraces are open, the oldest is let go early. Events that come
// after their trace was let go (late, evicted, or seen by another indexer
// before a rebalance or a restart) make a partial trace of the same id:
// the Writer merges it into the trace document already written (Merge,
// ParseTrace), so one request keeps one correct trace document.
//
// This package is traces' one home: the Correlator (assembly, bounded by
// bytes), the Writer (merging into what a Store holds, conditional writes
// through pipeline.Lookup, the traces index's Mappings). The collector
// only wires a Writer between its indexer and its output; the outputs know
// nothing of traces.
package correlate

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/cespare/xxhash/v2"
	"github.com/tidwall/gjson"

	"github.com/logweave/logweave/pipeline"
)

// Config bounds a Correlator.
type Config struct {
	Window        time.Duration
	MaxOpenTraces int
	// MaxBytes bounds the memory the open traces hold (counted per trace
	// from what it holds, see heapCost); past it the oldest are let go
	// early, as past MaxOpenTraces. 0: no bound but the count.
	MaxBytes int64
}

// heapCost is what an open trace holds on the heap, from the capacities of
// what it holds (its struct and its entry in the correlator's map, its
// part events, spans and id hashes, its id): the correlator's byte budget
// counts this. BenchmarkTraceCost checks it against the heap it measures:
// 0.44 KB for one event, 1.1 KB for 8 events of 4 services, 4.4 KB for 32.
func (t *Trace) heapCost() int64 {
	const overhead = 320 + 64 // the Trace (its size class) and its map entry
	c := overhead + int64(len(t.ID)) + int64(cap(t.parts))*int64(unsafe.Sizeof(partEvent{})) +
		int64(cap(t.Spans))*int64(unsafe.Sizeof(Span{})) + int64(cap(t.ids))*8
	if t.idSet != nil {
		c += 64 + int64(len(t.idSet))*36 // a Swiss table's slots and control bytes, about
	}
	if t.Entry != nil {
		c += 96 + int64(len(t.Entry.Method)+len(t.Entry.Path)+len(t.Entry.Client))
	}
	return c
}

// Span is what one service did for a request.
type Span struct {
	Service     string
	Start, End  instant
	Events      int32
	Errors      int32
	Level       string // the highest level seen
	firstArrive int32  // order of arrival, to order spans that start together
	levelRank   int8
}

// instant is a time as Unix nanoseconds: 8 bytes where a time.Time takes
// 24 (a trace holds a span per service and a part event per event).
type instant int64

func at(t time.Time) instant { return instant(t.UnixNano()) }

// Time is the instant in UTC.
func (i instant) Time() time.Time { return time.Unix(0, int64(i)).UTC() }

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

	// The events counted, by a 64-bit hash of their event.id (see
	// EventHash), so an event delivered twice (Kafka redelivers what was
	// not committed, also to another indexer after a rebalance) counts
	// once: ids lists them in order (the first MaxEventIDs are stored in
	// the document as event_hashes, to merge later parts against); parts
	// holds this part's events one by one for Merge.
	ids   []uint64
	idSet map[uint64]struct{}
	parts []partEvent
	cost  int64 // estimated heap, counted in the correlator's bytes
}

// partEvent is one event of a part, compact (~72 bytes): what Merge needs
// to fold it into another part as Add folded it into this one.
type partEvent struct {
	id             uint64 // EventHash; 0: none
	service, level string // interned
	start, end     int64  // Unix nanoseconds
	arrive         int32
	rank           int8 // levelRank(level)
	isError        bool
}

func (e *partEvent) span() Span {
	return Span{Service: e.service, Start: instant(e.start), End: instant(e.end), Events: 1, Errors: int32(b2i(e.isError)),
		Level: e.level, levelRank: e.rank, firstArrive: e.arrive}
}

// idSetFrom: below this many ids, a trace finds an id by looking through
// them (most requests have a handful of events); from it on, in a map.
const idSetFrom = 16

// MaxEventIDs is how many event ids a trace document keeps for telling
// duplicates in later parts (beyond, a redelivered event may count twice).
const MaxEventIDs = 1000

// EventHash is what a trace keeps of an event id: 8 bytes instead of the
// id (~27 bytes and a 16-byte header), so open traces stay small and the
// collector's heap has fewer pointers to scan. xxHash64; 0 stands for "no
// id". Two ids of one request colliding (n events: about n²/2⁶⁵, 3·10⁻¹⁴
// for 1,000) would count one event too few.
func EventHash(id string) uint64 {
	if id == "" {
		return 0
	}
	if h := xxhash.Sum64String(id); h != 0 {
		return h
	}
	return 1
}

// counted reports whether the event (by EventHash) was counted, and marks
// it.
func (t *Trace) counted(id uint64) bool {
	if id == 0 {
		return false
	}
	if t.idSet != nil {
		if _, ok := t.idSet[id]; ok {
			return true
		}
		t.idSet[id] = struct{}{}
	} else {
		for _, x := range t.ids {
			if x == id {
				return true
			}
		}
		if len(t.ids)+1 >= idSetFrom {
			t.idSet = make(map[uint64]struct{}, 2*idSetFrom)
			for _, x := range t.ids {
				t.idSet[x] = struct{}{}
			}
			t.idSet[id] = struct{}{}
		}
	}
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

// sortedSpans orders the spans by start, then by first arrival, in place
// (their order means nothing else), and returns them.
func (t *Trace) sortedSpans() []Span {
	if !slices.IsSortedFunc(t.Spans, spanOrder) { // often they came in order
		slices.SortStableFunc(t.Spans, spanOrder)
	}
	return t.Spans
}

func spanOrder(a, b Span) int {
	if a.Start != b.Start {
		return cmp.Compare(a.Start, b.Start)
	}
	return cmp.Compare(a.firstArrive, b.firstArrive)
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
	bytes      int64             // estimated heap of the open traces
	strs       map[string]string // interned service names and levels
	// Running means (×16) of the events and services of the traces let
	// go: a new trace's slices start at that size, so a request of the
	// usual shape allocates each once instead of growing 1, 2, 4, 8.
	meanEvents, meanSpans int
	// Traces (and part lists) the Writer is done with, to be reused:
	// a new trace was its collector's largest allocation (~1.2 KB).
	free      []*Trace
	freeParts [][]partEvent
}

// maxFree bounds the traces and part lists kept for reuse; reuseCap the
// size of what is kept (a large request's lists are let go).
const (
	maxFree  = 1024
	reuseCap = 64
)

// recycle takes back a trace nothing refers to any more (written, or
// merged into another), for a new trace to reuse its storage.
func (c *Correlator) recycle(t *Trace) {
	if t.parts != nil {
		c.recycleParts(t.parts)
	}
	if len(c.free) >= maxFree || cap(t.ids) > reuseCap || cap(t.Spans) > reuseCap {
		return
	}
	*t = Trace{ids: t.ids[:0], Spans: t.Spans[:0]}
	c.free = append(c.free, t)
}

// recycleParts takes back the part list of a trace that no longer needs
// it (written: its events were counted into its spans). The strings its
// elements still hold are interned service names and levels.
func (c *Correlator) recycleParts(p []partEvent) {
	if len(c.freeParts) < maxFree && cap(p) <= reuseCap {
		c.freeParts = append(c.freeParts, p[:0])
	}
}

// newTrace returns an empty trace for id, reusing one let go when it can,
// with room for about n events of k services.
func (c *Correlator) newTrace(id string, ts time.Time, n, k int) *Trace {
	var t *Trace
	if last := len(c.free) - 1; last >= 0 {
		t, c.free = c.free[last], c.free[:last]
		t.ID, t.Start, t.End = id, ts, ts
	} else {
		t = &Trace{ID: id, Start: ts, End: ts}
	}
	// Storage is reused at about the size a new trace would get (the
	// byte budget counts capacities: larger would hold fewer traces).
	if last := len(c.freeParts) - 1; last >= 0 && fits(cap(c.freeParts[last]), n) {
		t.parts, c.freeParts = c.freeParts[last], c.freeParts[:last]
	} else {
		t.parts = make([]partEvent, 0, n)
	}
	if !fits(cap(t.ids), min(n, idSetFrom)) {
		t.ids = make([]uint64, 0, min(n, idSetFrom))
	}
	if !fits(cap(t.Spans), k) {
		t.Spans = make([]Span, 0, k)
	}
	return t
}

// fits reports whether storage of capacity c serves for n, at most twice.
func fits(c, n int) bool { return c >= n && c <= 2*n }

// absorb folds o, a later part of the same request let go in the same
// batch (evicted, then again), into t, keeping its events one by one: the
// two are written, or merged into what was written, as one part.
func (t *Trace) absorb(o *Trace) {
	for i := range o.parts {
		e := &o.parts[i]
		if t.counted(e.id) {
			continue
		}
		t.parts = append(t.parts, *e)
		t.add(e.span())
	}
	if t.Entry == nil {
		t.Entry = o.Entry
	}
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
	return &Correlator{cfg: cfg, open: map[string]*Trace{}, strs: map[string]string{}}
}

// Open is the number of traces held.
func (c *Correlator) Open() int { return len(c.open) }

// What Add reads from each indexed document.
const (
	fTraceID = iota
	fTimestamp
	fService
	fLevel
	fStatus
	fDataset
	fMethod
	fPath
	fClient
	fDuration
	fEventID
	nFields
)

// docFields are the paths of those fields (as gjson.GetManyBytes took them).
var docFields = [nFields]string{"trace.id", "@timestamp", "service.name", "log.level", "http.response.status_code",
	"event.dataset", "http.request.method", "url.path", "source.ip", "event.duration", "event.id"}

// readFields reads docFields in one pass over the document: GetManyBytes
// parsed it once per path, 11 times, a third of the collector's CPU. The
// first occurrence of a key wins, as with gjson.Get. The results alias doc:
// what is kept must be copied.
func readFields(doc []byte) (f [nFields]gjson.Result) {
	if len(doc) == 0 {
		return f
	}
	set := func(i int, v gjson.Result) {
		if !f[i].Exists() {
			f[i] = v
		}
	}
	each := func(v gjson.Result, fn func(k string, v gjson.Result)) {
		if v.IsObject() {
			v.ForEach(func(k, v gjson.Result) bool { fn(k.Str, v); return true })
		}
	}
	gjson.Parse(unsafe.String(&doc[0], len(doc))).ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "@timestamp":
			set(fTimestamp, v)
		case "trace":
			each(v, func(k string, v gjson.Result) {
				if k == "id" {
					set(fTraceID, v)
				}
			})
		case "service":
			each(v, func(k string, v gjson.Result) {
				if k == "name" {
					set(fService, v)
				}
			})
		case "log":
			each(v, func(k string, v gjson.Result) {
				if k == "level" {
					set(fLevel, v)
				}
			})
		case "event":
			each(v, func(k string, v gjson.Result) {
				switch k {
				case "dataset":
					set(fDataset, v)
				case "duration":
					set(fDuration, v)
				case "id":
					set(fEventID, v)
				}
			})
		case "url":
			each(v, func(k string, v gjson.Result) {
				if k == "path" {
					set(fPath, v)
				}
			})
		case "source":
			each(v, func(k string, v gjson.Result) {
				if k == "ip" {
					set(fClient, v)
				}
			})
		case "http":
			each(v, func(k string, v gjson.Result) {
				switch k {
				case "response":
					each(v, func(k string, v gjson.Result) {
						if k == "status_code" {
							set(fStatus, v)
						}
					})
				case "request":
					each(v, func(k string, v gjson.Result) {
						if k == "method" {
							set(fMethod, v)
						}
					})
				}
			})
		}
		return true
	})
	return f
}

// intern keeps one copy of the few distinct service names and levels.
func (c *Correlator) intern(s string) string {
	if s == "" {
		return ""
	}
	if v, ok := c.strs[s]; ok {
		return v
	}
	v := strings.Clone(s)
	if len(c.strs) < 4096 {
		c.strs[v] = v
	}
	return v
}

// Add takes one indexed document (encoded JSON, with the fields the
// filters write) seen at now, and returns the traces it pushed out of
// memory (MaxOpenTraces, MaxBytes), oldest first. Documents without
// trace.id are ignored. It parses the document; AddFields takes what the
// filters found instead.
func (c *Correlator) Add(doc []byte, now time.Time) []*Trace {
	f := readFields(doc)
	ts, ok := pipeline.ParseTimestamp(f[fTimestamp].String())
	if !ok {
		return nil
	}
	tf := pipeline.TraceFields{TraceID: f[fTraceID].String(), Time: ts.UnixNano(), Service: f[fService].String(), Level: f[fLevel].String(),
		Status: f[fStatus].Int(), Dataset: f[fDataset].String(), Method: f[fMethod].String(), Path: f[fPath].String(),
		Client: f[fClient].String(), Duration: f[fDuration].Int()}
	return c.AddFields(f[fEventID].String(), &tf, now)
}

// AddFields takes what the correlator needs of one indexed event (its id
// and its TraceFields, as the filters found them) seen at now, and returns
// the traces it pushed out of memory, oldest first. Events without a
// TraceID are ignored. Strings are copied where they are kept.
func (c *Correlator) AddFields(eventID string, f *pipeline.TraceFields, now time.Time) []*Trace {
	id := f.TraceID
	if id == "" {
		return nil
	}
	ts, eventHash := time.Unix(0, f.Time).UTC(), EventHash(eventID)
	t := c.open[id]
	if t != nil {
		c.unlink(t)
	} else {
		id = strings.Clone(id)
		n, k := c.meanEvents/16+1, c.meanSpans/16+1
		t = c.newTrace(id, ts, n, k)
		c.open[id] = t
	}
	t.lastSeen = now
	c.pushBack(t)
	if t.counted(eventHash) {
		return nil // delivered again
	}

	service := c.intern(f.Service)
	if service == "" {
		service = "unknown"
	}
	level := c.intern(f.Level)
	status := int(f.Status)
	rank := levelRank(level)
	isError := rank >= errorRank || status >= 500
	c.arrivals++
	start := ts
	gateway := f.Dataset == pipeline.GatewayDataset
	if d := time.Duration(f.Duration); gateway && d > 0 {
		start = ts.Add(-d) // nginx logs when the response went out; it took $request_time
	}
	if start.Before(t.Start) {
		t.Start = start
	}
	t.parts = append(t.parts, partEvent{id: eventHash, service: service, level: level, start: start.UnixNano(), end: ts.UnixNano(),
		arrive: int32(c.arrivals), rank: int8(rank), isError: isError})
	t.add(t.parts[len(t.parts)-1].span())
	if gateway && t.Entry == nil {
		t.Entry = &Entry{Method: strings.Clone(f.Method), Path: strings.Clone(f.Path), Client: strings.Clone(f.Client),
			Status: status, Duration: time.Duration(f.Duration)}
	}

	cost := t.heapCost()
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
	if st := s.Start.Time(); st.Before(t.Start) {
		t.Start = st
	}
	if en := s.End.Time(); en.After(t.End) {
		t.End = en
	}
	t.Events += int(s.Events)
	t.Error = t.Error || s.Errors > 0
	for i := range t.Spans {
		sp := &t.Spans[i]
		if sp.Service != s.Service {
			continue
		}
		sp.Start = min(sp.Start, s.Start)
		sp.End = max(sp.End, s.End)
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
	for i := range o.parts {
		e := &o.parts[i]
		if t.counted(e.id) {
			continue
		}
		sp := e.span()
		if st := sp.Start.Time(); st.Before(t.Start) {
			t.Start = st
		}
		t.add(sp)
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
	// event_hashes since the ids are kept hashed; event_ids in documents
	// written before (a rolling upgrade merges into those too).
	for _, e := range r.Get("event_hashes").Array() {
		if h, err := strconv.ParseUint(e.String(), 16, 64); err == nil {
			t.counted(h)
		}
	}
	for _, e := range r.Get("event_ids").Array() {
		t.counted(EventHash(e.String()))
	}
	for i, s := range r.Get("spans").Array() {
		s0, _ := time.Parse(time.RFC3339Nano, s.Get("start").String())
		s1, _ := time.Parse(time.RFC3339Nano, s.Get("end").String())
		lv := s.Get("level").String()
		t.Spans = append(t.Spans, Span{Service: s.Get("service").String(), Start: at(s0), End: at(s1), Events: int32(s.Get("event_count").Int()),
			Errors: int32(s.Get("error_count").Int()), Level: lv, levelRank: int8(levelRank(lv)), firstArrive: int32(i - 1<<30)})
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
	// Means over the last ~16 traces, at most 64 events and 16 services.
	c.meanEvents += min(len(t.parts), 64) - c.meanEvents/16
	c.meanSpans += min(len(t.Spans), 16) - c.meanSpans/16
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

// levelRank orders levels (0: not a level it knows). A switch, not a map:
// it runs for every event.
func levelRank(l string) int {
	switch l {
	case "trace":
		return 1
	case "debug":
		return 2
	case "info":
		return 3
	case "notice":
		return 4
	case "warn", "warning":
		return 5
	case "error", "err":
		return 6
	case "critical", "fatal", "crit":
		return 7
	case "alert":
		return 8
	case "emergency", "panic":
		return 9
	}
	return 0
}

// errorRank is levelRank("error"): from it on, an event is an error.
const errorRank = 6

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// AppendJSON appends the trace document: what Kibana's trace views and
// `collector trace` read. Its _id is the trace id.
func (t *Trace) AppendJSON(dst []byte) []byte {
	dst = slices.Grow(dst, 256+len(t.ID)+160*len(t.Spans)+19*min(len(t.ids), MaxEventIDs))
	dst = append(dst, `{"trace":{"id":`...)
	dst = appendString(dst, t.ID)
	dst = append(dst, `},"@timestamp":"`...)
	dst = appendTime(dst, t.Start)
	dst = append(dst, `","end":"`...)
	dst = appendTime(dst, t.End)
	dst = append(dst, `","duration_ms":`...)
	dst = appendMillis(dst, t.Duration().Microseconds())
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
		dst = appendTime(dst, s.Start.Time())
		dst = append(dst, `","end":"`...)
		dst = appendTime(dst, s.End.Time())
		dst = append(dst, `","duration_ms":`...)
		dst = appendMillis(dst, time.Duration(s.End-s.Start).Microseconds())
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
		dst = append(dst, `,"event_hashes":[`...)
		for i, id := range t.ids[:min(len(t.ids), MaxEventIDs)] {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, '"')
			dst = appendHex16(dst, id)
			dst = append(dst, '"')
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

// appendHex16 appends h as 16 lower-case hex digits.
func appendHex16(dst []byte, h uint64) []byte {
	const digits = "0123456789abcdef"
	for shift := 60; shift >= 0; shift -= 4 {
		dst = append(dst, digits[h>>uint(shift)&0xf])
	}
	return dst
}

func appendString(dst []byte, s string) []byte { return pipeline.AppendJSONString(dst, s) }

// appendMillis appends us microseconds as milliseconds, the text
// strconv.AppendFloat(float64(us)/1000, 'f', -1, 64) writes (a number of
// thousandths has no shorter decimal), without its shortest-digits search.
func appendMillis(dst []byte, us int64) []byte {
	if us < 0 || us >= 1<<42 { // past ~50 days the float rounds otherwise
		return strconv.AppendFloat(dst, float64(us)/1000, 'f', -1, 64)
	}
	dst = strconv.AppendInt(dst, us/1000, 10)
	frac := us % 1000
	if frac == 0 {
		return dst
	}
	d := [3]byte{byte('0' + frac/100), byte('0' + frac/10%10), byte('0' + frac%10)}
	n := 3
	for d[n-1] == '0' {
		n--
	}
	return append(append(dst, '.'), d[:n]...)
}

func appendTime(dst []byte, t time.Time) []byte { return pipeline.AppendTimestamp(dst, t) }
