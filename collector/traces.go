package collector

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/logweave/logweave/correlate"
	"github.com/logweave/logweave/internal/jitter"
	"github.com/logweave/logweave/outputs/elasticsearch"
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

// tracer feeds delivered events to the correlator and writes the traces it
// lets go to the output, under the trace id, in the traces index. A nil
// tracer does nothing (correlation.traces_index empty).
//
// What the correlator lets go may be only part of a request (events that
// came late, or that another indexer saw before a rebalance or a restart):
// before writing, the tracer merges it into the document already written.
// With Elasticsearch it reads that document and writes the merge only if
// the document has not changed since (optimistic concurrency), so two
// indexers writing parts of one request at once both count; with the file
// output it remembers its recent writes.
type tracer struct {
	corr         *correlate.Correlator
	out          Output
	lookup       traceLookup // nil: memory only (the file output)
	index        *pipeline.IndexPattern
	pattern      string
	log          *slog.Logger
	written      map[string][]byte // recent trace documents, for merging
	order        []string          // their ids, oldest first
	writtenBytes int               // their size, bounded by rememberBytes
}

// traceLookup finds trace documents already written, with their versions.
type traceLookup interface {
	TraceDocs(ctx context.Context, indexPattern string, ids []string) (map[string]elasticsearch.TraceDoc, error)
}

// traceWriteAttempts bounds how often a part is merged again after a
// conflict (another indexer wrote the request in between, or a document
// written a moment ago is not searchable yet).
const traceWriteAttempts = 8

// rememberBytes bounds the tracer's memory of written documents (the file
// output, which cannot be read back): a later part of a request whose
// document was forgotten is written as a document of its own.
const rememberBytes = 8 << 20

func newTracer(cfg CorrelationConfig, out Output, log *slog.Logger) *tracer {
	idx, _ := pipeline.ParseIndexPattern(cfg.TracesIndex) // validated
	t := &tracer{corr: correlate.New(correlate.Config{Window: cfg.Window, MaxOpenTraces: cfg.MaxOpenTraces, MaxBytes: int64(cfg.MaxMemory)}), out: out, index: idx,
		pattern: cfg.TracesIndex, log: log, written: map[string][]byte{}}
	t.lookup, _ = out.(traceLookup)
	return t
}

func (t *tracer) nextExpiry() time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.corr.NextExpiry()
}

func (t *tracer) add(ctx context.Context, recs []pipeline.Record, now time.Time) {
	if t == nil {
		return
	}
	var out []*correlate.Trace
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

func (t *tracer) expire(ctx context.Context, now time.Time) {
	if t != nil {
		t.write(ctx, t.corr.Expire(now))
	}
}

func (t *tracer) flush(ctx context.Context) {
	t.write(ctx, t.corr.Flush())
}

// traceWriteChunk bounds the trace documents written at once: at shutdown
// or when a burst of requests expires together, thousands are let go at
// once, and writing them in one batch was the collector's peak of memory.
const traceWriteChunk = 500

func (t *tracer) write(ctx context.Context, traces []*correlate.Trace) {
	tracesOpen.Set(float64(t.corr.Open()))
	tracesOpenBytes.Set(float64(t.corr.Bytes()))
	for len(traces) > traceWriteChunk {
		t.writeChunk(ctx, traces[:traceWriteChunk])
		traces = traces[traceWriteChunk:]
	}
	t.writeChunk(ctx, traces)
}

func (t *tracer) writeChunk(ctx context.Context, traces []*correlate.Trace) {
	if len(traces) == 0 {
		return
	}
	if t.lookup != nil {
		t.writeConditional(ctx, traces)
		return
	}
	recs := make([]pipeline.Record, len(traces))
	var idx [64]byte
	for i, tr := range traces {
		if prev := t.written[tr.ID]; prev != nil {
			if base, ok := correlate.ParseTrace(prev); ok {
				base.Merge(tr)
				tr = base
			}
		}
		recs[i] = pipeline.Record{ID: tr.ID, Key: tr.ID, Index: string(t.index.Append(idx[:0], tr.Start)), Doc: tr.AppendJSON(nil)}
	}
	if err := t.out.Write(ctx, recs); err != nil {
		tracesLost.Add(float64(len(recs)))
		t.log.Warn("indexer: writing trace documents failed", "traces", len(recs), "error", err)
		return
	}
	tracesWritten.Add(float64(len(recs)))
	for _, r := range recs {
		if prev, ok := t.written[r.ID]; ok {
			t.writtenBytes -= cap(prev)
		} else {
			t.order = append(t.order, r.ID)
			t.writtenBytes += len(r.ID) + 64 // the map entry and the order slot
		}
		t.written[r.ID] = r.Doc
		t.writtenBytes += cap(r.Doc)
	}
	for t.writtenBytes > rememberBytes && len(t.order) > 0 {
		id := t.order[0]
		t.writtenBytes -= cap(t.written[id]) + len(id) + 64
		delete(t.written, id)
		t.order = t.order[1:]
	}
}

// writeConditional merges each part into the document Elasticsearch has
// and writes the merge only if that document is still the one read (a new
// trace only if none was created meanwhile). A part whose write conflicts
// is read and merged again, after a pause that lets a document written a
// moment ago become searchable.
func (t *tracer) writeConditional(ctx context.Context, parts []*correlate.Trace) {
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
	var idx [64]byte
	for attempt := 1; len(parts) > 0; {
		ids := make([]string, len(parts))
		for i, p := range parts {
			ids[i] = p.ID
		}
		found, err := t.lookup.TraceDocs(ctx, t.pattern, ids)
		if err != nil {
			// Elasticsearch is away: the events wait too; try again.
			t.log.Warn("indexer: reading trace documents to merge into failed; trying again", "error", err)
			if !pause() {
				tracesLost.Add(float64(len(parts)))
				return
			}
			continue
		}
		recs := make([]pipeline.Record, len(parts))
		for i, p := range parts {
			tr, index, cond := p, string(t.index.Append(idx[:0], p.Start)), &pipeline.Condition{Create: true}
			if d, ok := found[p.ID]; ok {
				if base, ok := correlate.ParseTrace(d.Doc); ok {
					base.Merge(p)
					tr = base
				}
				index, cond = d.Index, &pipeline.Condition{SeqNo: d.SeqNo, PrimaryTerm: d.PrimaryTerm}
			}
			recs[i] = pipeline.Record{ID: p.ID, Key: p.ID, Index: index, Doc: tr.AppendJSON(nil), Cond: cond}
		}
		err = t.out.Write(ctx, recs)
		var conflict *elasticsearch.ConflictError
		switch {
		case errors.As(err, &conflict):
			tracesWritten.Add(float64(len(recs) - len(conflict.Records)))
			tracesConflicts.Add(float64(len(conflict.Records)))
			again := map[string]bool{}
			for _, r := range conflict.Records {
				again[r.ID] = true
			}
			parts = slices.DeleteFunc(parts, func(p *correlate.Trace) bool { return !again[p.ID] })
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
