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
// Traces are derived from events already delivered and committed: one
// open when the indexer stops is written at once, incomplete, and completed
// by events that come after the restart only while they are within the
// window of each other.
type tracer struct {
	corr  *correlate.Correlator
	out   Output
	index *pipeline.IndexPattern
	log   *slog.Logger
}

func newTracer(cfg CorrelationConfig, out Output, log *slog.Logger) *tracer {
	idx, _ := pipeline.ParseIndexPattern(cfg.TracesIndex) // validated
	return &tracer{corr: correlate.New(correlate.Config{Window: cfg.Window, MaxOpenTraces: cfg.MaxOpenTraces}), out: out, index: idx, log: log}
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
	recs := make([]pipeline.Record, len(traces))
	var idx [64]byte
	for i, tr := range traces {
		recs[i] = pipeline.Record{ID: tr.ID, Key: tr.ID, Index: string(t.index.Append(idx[:0], tr.Start)), Doc: tr.AppendJSON(nil)}
	}
	if err := t.out.Write(ctx, recs); err != nil {
		tracesLost.Add(float64(len(recs)))
		t.log.Warn("indexer: writing trace documents failed", "traces", len(recs), "error", err)
		return
	}
	tracesWritten.Add(float64(len(recs)))
}
