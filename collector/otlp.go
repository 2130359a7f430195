package collector

import (
	"context"
	"log/slog"
	"time"

	"github.com/logweave/logweave/filters"
	"github.com/logweave/logweave/inputs/ingest"
	"github.com/logweave/logweave/inputs/otlp"
	"github.com/logweave/logweave/pipeline"
)

// startOTLP serves OTLP logs: each request's records go through the
// filters into the sink, and the request succeeds once the sink wrote them.
func startOTLP(cfg otlp.Config, proc *filters.Processor, sink ingest.Sink, log *slog.Logger) (*otlp.Server, error) {
	handle := func(ctx context.Context, recs []otlp.Record) error {
		now := time.Now()
		out := make([]pipeline.Record, 0, len(recs))
		var ev pipeline.Event
		for _, r := range recs {
			// The id is the record's content: a request retried (its answer
			// was lost) overwrites itself.
			env := pipeline.Envelope{ID: pipeline.EventID("otlp", "", 0, 0, r.Line), ReadAt: now, Line: r.Line}
			out = append(out, proc.Process(&env, &ev, nil))
		}
		return storeAcked(ctx, sink, "otlp", out)
	}
	srv, err := otlp.Listen(cfg, handle, log)
	if err != nil {
		return nil, err
	}
	log.Info("otlp: listening", "http", srv.HTTPAddr(), "grpc", srv.GRPCAddr())
	return srv, nil
}
