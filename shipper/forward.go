package shipper

import (
	"context"
	"log/slog"
	"time"

	"github.com/logweave/logweave/inputs/forward"
	"github.com/logweave/logweave/outputs/collector"
	"github.com/logweave/logweave/pipeline"
)

// forwardInput receives Fluent Forward (Docker's fluentd log driver,
// Fluent Bit's and Fluentd's forward outputs) into its spool. A message's
// chunk is acknowledged once its entries are in the spool (fsynced); while
// the spool refuses, the connection waits for its acknowledgement and the
// sender holds back. Records are mapped here and spooled as JSON log lines.
type forwardInput struct {
	*spool
	srv *forward.Server
}

func openForward(cfg forward.Config, sc SpoolConfig, dir, host string, log *slog.Logger) (*forwardInput, error) {
	sp, err := openSpool("forward", dir, sc, host, log)
	if err != nil {
		return nil, err
	}
	f := &forwardInput{spool: sp}
	f.srv, err = forward.Listen(cfg, f.store, log)
	if err != nil {
		sp.buf.Close()
		return nil, err
	}
	f.listen = f.srv.Addr()
	log.Info("shipper: receiving Fluent Forward (tcp)", "addr", f.srv.Addr(), "spool", dir)
	return f, nil
}

// store spools one message's entries; nil once they are durable.
func (f *forwardInput) store(ctx context.Context, m *forward.Message) error {
	now := time.Now()
	recs := make([][]byte, 0, len(m.Entries))
	for i, e := range m.Entries {
		// A chunk sent again (its ack was lost) gets the same ids, so it
		// overwrites itself; without a chunk id nothing is resent.
		origin, n := "forward\x00"+m.Tag+"\x00"+m.Chunk, int64(i)
		if m.Chunk == "" {
			origin, n = "forward\x00"+m.Tag, f.seq.Add(1)
		}
		env := pipeline.Envelope{
			ID:     pipeline.EventID(f.host, origin, n, e.Time.UnixNano(), e.Record),
			ReadAt: now,
			Host:   f.host,
			Line:   forward.Map(m.Tag, e),
		}
		recs = append(recs, env.AppendJSON(nil))
	}
	return f.append(ctx, recs)
}

func (f *forwardInput) run(ctx context.Context, items chan<- collector.Item) {
	stopFeed := f.startFeed(items)
	<-ctx.Done()
	close(f.stopping) // a message the spool refuses now is not acknowledged: its sender sends it again
	f.srv.Close()
	stopFeed()
}

func (f *forwardInput) close() {
	f.srv.Close()
	f.buf.Close()
}

// Addr is where Forward is received.
func (f *forwardInput) Addr() string { return f.srv.Addr() }
