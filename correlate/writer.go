package correlate

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/logweave/logweave/internal/jitter"
	"github.com/logweave/logweave/pipeline"
)

var (
	tracesWritten = promauto.NewCounter(prometheus.CounterOpts{
		Name: "logweave_traces_written_total", Help: "Trace documents written (a trace reopened by a late event counts again)."})
	tracesOpen = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "logweave_traces_open", Help: "Requests whose trace is being assembled."})
	tracesOpenBytes = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "logweave_traces_open_bytes", Help: "Estimated heap held by the traces being assembled (bounded by correlation.max_memory)."})
	tracesLost = promauto.NewCounter(prometheus.CounterOpts{
		Name: "logweave_traces_write_failed_total", Help: "Trace documents the output did not take (the events are indexed; the trace is rebuilt by its next event)."})
	tracesConflicts = promauto.NewCounter(prometheus.CounterOpts{
		Name: "logweave_traces_write_conflicts_total", Help: "Trace writes redone because another indexer wrote the same request in between."})
)

// Writer feeds delivered events to a Correlator and writes the traces it
// lets go to a Store (the indexer's output), under the trace id, in the
// traces index. A nil Writer does nothing (no traces index).
//
// What the correlator lets go may be only part of a request (events that
// came late, or that another indexer saw before a rebalance or a restart):
// before writing, the Writer merges it into the document already written.
// With Elasticsearch it reads that document and writes the merge only if
// the document has not changed since (optimistic concurrency), so two
// indexers writing parts of one request at once both count; with the file
// output it remembers its recent writes.
type Writer struct {
	corr         *Correlator
	out          Store
	lookup       pipeline.Lookup // nil: memory only (the file output)
	index        *pipeline.IndexPattern
	pattern      string
	log          *slog.Logger
	written      map[string]*Trace // recent traces written, for merging
	order        []string          // their ids, oldest first
	writtenBytes int               // their heap, bounded by rememberBytes

	// Reused from chunk to chunk: the outputs copy what they write.
	docs []byte
	recs []pipeline.Record
}

// Store is where the Writer puts trace documents: the indexer's output. A
// store that can also read documents back (pipeline.Lookup: Elasticsearch)
// has each part merged into the document it holds, conditionally.
type Store interface {
	Write(ctx context.Context, recs []pipeline.Record) error
}

// traceWriteAttempts bounds how often a part is merged again after a
// conflict (another indexer wrote the request in between, or a document
// written a moment ago is not searchable yet).
const traceWriteAttempts = 8

// rememberBytes bounds the Writer's memory of the traces it wrote (for the
// file output, which cannot be read back): a later part of a request whose
// trace was forgotten is written as a document of its own.
const rememberBytes = 8 << 20

// TemplateName names the index template of the trace documents.
const TemplateName = "logweave-traces"

// Mappings map the trace documents AppendJSON writes, for an index
// template of the traces index: one per request, its spans as nested
// objects (a span's service and duration stay together for per-service
// aggregations, as Kibana's Vega chart does).
func Mappings() map[string]any {
	kw := map[string]any{"type": "keyword", "ignore_above": 1024}
	date := map[string]any{"type": "date"}
	ms := map[string]any{"type": "float"}
	return map[string]any{
		"dynamic": false,
		"properties": map[string]any{
			"@timestamp": date, "end": date, "duration_ms": ms,
			"event_count": map[string]any{"type": "integer"},
			"error":       map[string]any{"type": "boolean"},
			"services":    kw,
			"trace":       map[string]any{"properties": map[string]any{"id": kw}},
			"spans": map[string]any{"type": "nested", "properties": map[string]any{
				"service": kw, "start": date, "end": date, "duration_ms": ms, "level": kw,
				"event_count": map[string]any{"type": "integer"}, "error_count": map[string]any{"type": "integer"},
			}},
			"http": map[string]any{"properties": map[string]any{
				"request":  map[string]any{"properties": map[string]any{"method": kw}},
				"response": map[string]any{"properties": map[string]any{"status_code": map[string]any{"type": "integer"}}},
			}},
			"url":    map[string]any{"properties": map[string]any{"path": kw}},
			"source": map[string]any{"properties": map[string]any{"ip": map[string]any{"type": "ip", "ignore_malformed": true}}},
		},
	}
}

// WriterConfig is the correlator's Config and the traces index.
type WriterConfig struct {
	Config
	// Index is a Logstash-style index pattern (traces-%{+yyyy.MM.dd}),
	// dated by each trace's first event.
	Index string
}

// NewWriter returns a Writer of traces to out.
func NewWriter(cfg WriterConfig, out Store, log *slog.Logger) (*Writer, error) {
	idx, err := pipeline.ParseIndexPattern(cfg.Index)
	if err != nil {
		return nil, err
	}
	t := &Writer{corr: New(cfg.Config), out: out, index: idx, pattern: cfg.Index, log: log, written: map[string]*Trace{}}
	t.lookup, _ = out.(pipeline.Lookup)
	return t, nil
}

// NextExpiry is when the least recently seen open trace will have been
// quiet for the window (zero when none is open).
func (t *Writer) NextExpiry() time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.corr.NextExpiry()
}

// Add feeds the events of a delivered batch (seen at now) to the
// correlator, and writes the traces it lets go.
func (t *Writer) Add(ctx context.Context, recs []pipeline.Record, now time.Time) {
	if t == nil {
		return
	}
	var out []*Trace
	var f pipeline.TraceFields
	for i := range recs {
		r := &recs[i]
		if len(r.Trace) > 0 && f.UnmarshalBinary(r.Trace) == nil {
			out = append(out, t.corr.AddFields(r.ID, &f, now)...)
		} else {
			// Made durable by a version that did not carry them (a
			// rolling upgrade over a buffer or a topic): from the document.
			out = append(out, t.corr.Add(r.Doc, now)...)
		}
	}
	out = append(out, t.corr.Expire(now)...)
	t.write(ctx, out)
}

// Expire writes the traces quiet for the window at now.
func (t *Writer) Expire(ctx context.Context, now time.Time) {
	if t != nil {
		t.write(ctx, t.corr.Expire(now))
	}
}

// Flush writes every open trace (at shutdown).
func (t *Writer) Flush(ctx context.Context) {
	if t != nil {
		t.write(ctx, t.corr.Flush())
	}
}

// traceWriteChunk bounds the trace documents written at once: at shutdown
// or when a burst of requests expires together, thousands are let go at
// once, and writing them in one batch was the collector's peak of memory.
const traceWriteChunk = 500

func (t *Writer) write(ctx context.Context, traces []*Trace) {
	tracesOpen.Set(float64(t.corr.Open()))
	tracesOpenBytes.Set(float64(t.corr.Bytes()))
	traces = t.coalesce(traces)
	for len(traces) > traceWriteChunk {
		t.writeChunk(ctx, traces[:traceWriteChunk])
		traces = traces[traceWriteChunk:]
	}
	t.writeChunk(ctx, traces)
}

// coalesce makes the parts of one request let go more than once in one
// batch one part (the first's place): written apart, the later would
// overwrite the earlier (the file output) or conflict with it
// (Elasticsearch).
func (t *Writer) coalesce(traces []*Trace) []*Trace {
	if len(traces) < 2 {
		return traces
	}
	first := make(map[string]*Trace, len(traces))
	n := 0
	for _, tr := range traces {
		if f := first[tr.ID]; f != nil {
			f.absorb(tr)
			t.corr.recycle(tr)
			continue
		}
		first[tr.ID] = tr
		traces[n] = tr
		n++
	}
	clear(traces[n:])
	return traces[:n]
}

func (t *Writer) writeChunk(ctx context.Context, traces []*Trace) {
	if len(traces) == 0 {
		return
	}
	if t.lookup != nil {
		t.writeConditional(ctx, traces)
		return
	}
	recs := t.records(len(traces))
	for i, tr := range traces {
		if base := t.written[tr.ID]; base != nil && base != tr {
			base.Merge(tr) // on a failed write, base keeps the part: the next part's write carries it
			t.corr.recycle(tr)
			tr = base
		}
		recs[i] = pipeline.Record{ID: tr.ID, Key: tr.ID, Index: t.index.Name(tr.Start)}
		traces[i] = tr
	}
	t.encode(recs, traces)
	if err := t.out.Write(ctx, recs); err != nil {
		tracesLost.Add(float64(len(recs)))
		t.log.Warn("indexer: writing trace documents failed", "traces", len(recs), "error", err)
		return
	}
	tracesWritten.Add(float64(len(recs)))
	for _, tr := range traces {
		if tr.parts != nil { // only a part being merged needs its events one by one
			t.corr.recycleParts(tr.parts)
			tr.parts = nil
		}
		if prev, ok := t.written[tr.ID]; ok {
			t.writtenBytes -= int(prev.cost)
		} else {
			t.order = append(t.order, tr.ID)
		}
		tr.cost = tr.heapCost() + 16 // and its slot in order
		t.written[tr.ID] = tr
		t.writtenBytes += int(tr.cost)
	}
	for t.writtenBytes > rememberBytes && len(t.order) > 0 {
		id := t.order[0]
		old := t.written[id]
		t.writtenBytes -= int(old.cost)
		delete(t.written, id)
		t.corr.recycle(old)
		t.order = t.order[1:]
	}
}

// records returns n zeroed records of the reused slice.
func (t *Writer) records(n int) []pipeline.Record {
	t.recs = slices.Grow(t.recs[:0], n)[:n]
	clear(t.recs)
	return t.recs
}

// encode sets each record's document to its trace's, encoded into one
// reused buffer (valid until the next chunk).
func (t *Writer) encode(recs []pipeline.Record, traces []*Trace) {
	t.docs = t.docs[:0]
	ends := make([]int, len(traces))
	for i, tr := range traces {
		t.docs = tr.AppendJSON(t.docs)
		ends[i] = len(t.docs)
	}
	start := 0
	for i, end := range ends {
		recs[i].Doc = t.docs[start:end:end]
		start = end
	}
}

// writeConditional merges each part into the document Elasticsearch has
// and writes the merge only if that document is still the one read (a new
// trace only if none was created meanwhile). A part whose write conflicts
// is read and merged again, after a pause that lets a document written a
// moment ago become searchable.
func (t *Writer) writeConditional(ctx context.Context, parts []*Trace) {
	// However it ends, nothing refers to the parts afterwards: their
	// storage goes to new traces.
	defer func(all []*Trace) {
		for _, p := range all {
			t.corr.recycle(p)
		}
	}(slices.Clone(parts))
	backoff := 100 * time.Millisecond
	pause := func() bool {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(jitter.Equal(backoff)):
		}
		backoff = min(2*backoff, 5*time.Second)
		return true
	}
	for attempt := 1; len(parts) > 0; {
		ids := make([]string, len(parts))
		for i, p := range parts {
			ids[i] = p.ID
		}
		found, err := t.lookup.Lookup(ctx, t.pattern, "trace.id", ids)
		if err != nil {
			// Elasticsearch is away: the events wait too; try again.
			t.log.Warn("indexer: reading trace documents to merge into failed; trying again", "error", err)
			if !pause() {
				tracesLost.Add(float64(len(parts)))
				return
			}
			continue
		}
		recs, merged := t.records(len(parts)), make([]*Trace, len(parts))
		for i, p := range parts {
			tr, index, cond := p, "", &pipeline.Condition{Create: true}
			if d, ok := found[p.ID]; ok {
				if base, ok := ParseTrace(d.Doc); ok {
					base.Merge(p)
					tr = base
				}
				index, cond = d.Index, &pipeline.Condition{SeqNo: d.SeqNo, PrimaryTerm: d.PrimaryTerm}
			} else {
				index = t.index.Name(p.Start)
			}
			recs[i], merged[i] = pipeline.Record{ID: p.ID, Key: p.ID, Index: index, Cond: cond}, tr
		}
		t.encode(recs, merged)
		err = t.out.Write(ctx, recs)
		var conflict *pipeline.ConflictError
		switch {
		case errors.As(err, &conflict):
			tracesWritten.Add(float64(len(recs) - len(conflict.Records)))
			tracesConflicts.Add(float64(len(conflict.Records)))
			again := map[string]bool{}
			for _, r := range conflict.Records {
				again[r.ID] = true
			}
			parts = slices.DeleteFunc(parts, func(p *Trace) bool { return !again[p.ID] })
			if attempt++; attempt > traceWriteAttempts || !pause() {
				tracesLost.Add(float64(len(parts)))
				t.log.Warn("indexer: trace documents kept changing under us; parts not written", "traces", len(parts))
				return
			}
		case err != nil:
			tracesLost.Add(float64(len(recs)))
			t.log.Warn("indexer: writing trace documents failed", "traces", len(recs), "error", err)
			return
		default:
			tracesWritten.Add(float64(len(recs)))
			return
		}
	}
}
