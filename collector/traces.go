package collector

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/logweave/logweave/correlate"
	"github.com/logweave/logweave/pipeline"
)

var (
	tracesWritten = promauto.NewCounter(prometheus.CounterOpts{
		Name: "logweave_traces_written_total", Help: "Trace documents written (a trace reopened by a late event counts again)."})
	tracesOpen = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "logweave_traces_open", Help: "Requests whose trace is being assembled."})
	tracesLost = promauto.NewCounter(prometheus.CounterOpts{
		Name: "logweave_traces_write_failed_total", Help: "Trace documents the output did not take (the events are indexed; the trace is rebuilt by its next event)."})
)

// tracer feeds delivered events to the correlator and writes the traces it
// lets go to the output, under the trace id, in the traces index. A nil
// tracer does nothing (correlation.traces_index empty).
//
// What the correlator lets go may be only part of a request (events that
// came late, or that another indexer saw before a rebalance or a restart):
// before writing, the tracer merges it into the document already written,
// found in its memory of recent writes or, for Elasticsearch, by asking.
type tracer struct {
	corr    *correlate.Correlator
	out     Output
	lookup  traceLookup // nil: memory only (the file output)
	index   *pipeline.IndexPattern
	pattern string
	log     *slog.Logger
	written map[string][]byte // recent trace documents, for merging
	order   []string          // their ids, oldest first
}

// traceLookup finds trace documents already written.
type traceLookup interface {
	TraceDocs(ctx context.Context, indexPattern string, ids []string) (map[string][]byte, error)
}

// rememberedTraces bounds the tracer's memory of written documents.
const rememberedTraces = 20000

func newTracer(cfg CorrelationConfig, out Output, log *slog.Logger) *tracer {
	idx, _ := pipeline.ParseIndexPattern(cfg.TracesIndex) // validated
	t := &tracer{corr: correlate.New(correlate.Config{Window: cfg.Window, MaxOpenTraces: cfg.MaxOpenTraces}), out: out, index: idx,
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
	for i := range recs {
		out = append(out, t.corr.Add(recs[i].Doc, now)...)
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

func (t *tracer) write(ctx context.Context, traces []*correlate.Trace) {
	tracesOpen.Set(float64(t.corr.Open()))
	if len(traces) == 0 {
		return
	}
	var ask []string
	for _, tr := range traces {
		if t.written[tr.ID] == nil {
			ask = append(ask, tr.ID)
		}
	}
	var found map[string][]byte
	if t.lookup != nil && len(ask) > 0 {
		var err error
		if found, err = t.lookup.TraceDocs(ctx, t.pattern, ask); err != nil {
			t.log.Warn("indexer: reading trace documents to merge into failed; writing the parts as they are", "error", err)
		}
	}
	recs := make([]pipeline.Record, len(traces))
	var idx [64]byte
	for i, tr := range traces {
		prev := t.written[tr.ID]
		if prev == nil {
			prev = found[tr.ID]
		}
		if prev != nil {
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
		if t.written[r.ID] == nil {
			t.order = append(t.order, r.ID)
		}
		t.written[r.ID] = r.Doc
	}
	for len(t.order) > rememberedTraces {
		delete(t.written, t.order[0])
		t.order = t.order[1:]
	}
}
