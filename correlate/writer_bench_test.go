package correlate_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/logweave/logweave/correlate"
	"github.com/logweave/logweave/pipeline"
)

type discardStore struct{ docs, bytes int }

func (d *discardStore) Write(_ context.Context, recs []pipeline.Record) error {
	for _, r := range recs {
		d.docs++
		d.bytes += len(r.Doc)
	}
	return nil
}

// BenchmarkWriter is the indexer's trace work per event as the collector
// does it: records carrying their TraceFields (as the filters found them),
// in batches of 1,000, 64 requests open at a time with 6-10 events each
// from 6 services (the end-to-end benchmark's mix), the correlator bounded
// by 16 MiB, the let-go traces encoded and written to a store that counts.
func BenchmarkWriter(b *testing.B) {
	const batch = 1000
	rng := rand.New(rand.NewPCG(1, 2))
	services := []string{"gateway", "auth", "orders", "inventory", "payment", "shipping"}
	levels := []string{"debug", "info", "info", "info", "warn", "error"}
	type req struct {
		id   string
		left int
	}
	var open []*req
	recs := make([]pipeline.Record, 200_000)
	at := t0
	for i := range recs {
		for len(open) < 64 {
			open = append(open, &req{id: fmt.Sprintf("%016x%016x", rng.Uint64(), rng.Uint64()), left: 6 + rng.IntN(5)})
		}
		k := rng.IntN(len(open))
		r := open[k]
		if r.left--; r.left == 0 {
			open[k] = open[len(open)-1]
			open = open[:len(open)-1]
		}
		at = at.Add(3 * time.Millisecond)
		f := pipeline.TraceFields{TraceID: r.id, Time: at.UnixNano(), Service: services[rng.IntN(6)], Level: levels[rng.IntN(6)], Status: 200}
		recs[i] = pipeline.Record{ID: fmt.Sprintf("%027d", i), Trace: f.AppendBinary(nil)}
	}
	store := &discardStore{}
	w, err := correlate.NewWriter(correlate.WriterConfig{Index: "traces-%{+yyyy.MM.dd}",
		Config: correlate.Config{Window: 30 * time.Second, MaxOpenTraces: 100000, MaxBytes: 16 << 20}}, store, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	ctx, now := context.Background(), time.Now()
	b.ReportAllocs()
	events := 0
	for i := 0; b.Loop(); i++ {
		off := i * batch % len(recs)
		w.Add(ctx, recs[off:off+batch], now)
		events += batch
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(events), "ns/event")
	b.ReportMetric(float64(store.bytes)/float64(max(store.docs, 1)), "bytes/trace")
}
