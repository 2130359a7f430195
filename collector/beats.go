package collector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/logweave/logweave/filters"
	"github.com/logweave/logweave/inputs/beats"
	"github.com/logweave/logweave/inputs/ingest"
	"github.com/logweave/logweave/pipeline"
)

// startBeats serves Lumberjack v2 (Beats' output.logstash): each window's
// events go through the filters into the sink, and the window is
// acknowledged once the sink wrote them (durable).
func startBeats(cfg beats.Config, proc *filters.Processor, sink ingest.Sink, log *slog.Logger) (*beats.Server, error) {
	handle := func(ctx context.Context, events [][]byte) error {
		now := time.Now()
		recs := make([]pipeline.Record, 0, len(events))
		var ev pipeline.Event
		for _, e := range events {
			// The id is the event's content: a window sent again (its ack
			// was lost) overwrites itself.
			env := pipeline.Envelope{ID: pipeline.EventID("beats", "", 0, 0, e), ReadAt: now, Line: beats.Map(e)}
			recs = append(recs, proc.Process(&env, &ev, nil))
		}
		return storeAcked(ctx, sink, "beats", recs)
	}
	srv, err := beats.Listen(cfg, handle, log)
	if err != nil {
		return nil, err
	}
	log.Info("beats: listening (tcp)", "addr", srv.Addr())
	return srv, nil
}

// ackedStoreTimeout bounds how long the events of a protocol with
// acknowledgements (Forward, Beats) wait for a full buffer: past it the
// connection is closed unanswered, and the sender (which keeps them until
// acknowledged) sends them again later.
const ackedStoreTimeout = 30 * time.Second

// storeAcked writes the records of one acknowledged message or window,
// trying again while the sink is full, for at most ackedStoreTimeout.
func storeAcked(ctx context.Context, sink ingest.Sink, input string, recs []pipeline.Record) error {
	ctx, cancel := context.WithTimeout(ctx, ackedStoreTimeout)
	defer cancel()
	for backoff := 50 * time.Millisecond; ; backoff = min(backoff*2, 2*time.Second) {
		err := sink.Write(ctx, recs)
		if err == nil {
			ingest.Received(input, len(recs))
			return nil
		}
		if !errors.Is(err, ingest.ErrFull) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("buffer full for %s: %w", ackedStoreTimeout, err)
		case <-time.After(backoff):
		}
	}
}
