package collector

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/logweave/logweave/filters"
	"github.com/logweave/logweave/inputs/forward"
	"github.com/logweave/logweave/inputs/ingest"
	"github.com/logweave/logweave/pipeline"
)

// startForward serves the Fluent Forward protocol: each message's entries
// go through the filters into the sink, and its chunk is acknowledged once
// the sink wrote them (durable).
func startForward(cfg forward.Config, proc *filters.Processor, sink ingest.Sink, log *slog.Logger) (*forward.Server, error) {
	var seq atomic.Int64
	handle := func(ctx context.Context, m *forward.Message) error {
		now := time.Now()
		recs := make([]pipeline.Record, 0, len(m.Entries))
		var ev pipeline.Event
		for i, e := range m.Entries {
			line := forward.Map(m.Tag, e)
			// A chunk sent again (its ack was lost) gets the same ids, so
			// it overwrites itself; without a chunk id nothing is resent.
			origin, n := m.Tag+"\x00"+m.Chunk, int64(i)
			if m.Chunk == "" {
				origin, n = m.Tag, seq.Add(1)
			}
			env := pipeline.Envelope{ID: pipeline.EventID("forward", origin, n, e.Time.UnixNano(), e.Record), ReadAt: now, Line: line}
			recs = append(recs, proc.Process(&env, &ev, nil))
		}
		return storeAcked(ctx, sink, "forward", recs)
	}
	srv, err := forward.Listen(cfg, handle, log)
	if err != nil {
		return nil, err
	}
	log.Info("forward: listening (tcp)", "addr", srv.Addr())
	return srv, nil
}
