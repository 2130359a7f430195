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
// the spool refuses, the connection waits for its acknowledgement (for up
// to 30 s, then it is closed and the sender sends the chunk again later).
// Records are mapped here and spooled as JSON log lines.
type forwardInput struct {
	*spool
	srv *forward.Server
}

// forwardWait bounds how long a chunk waits for a spool that refuses.
const forwardWait = 30 * time.Second

func openForward(cfg forward.Config, sc SpoolConfig, dir, host string, log *slog.Logger) (*forwardInput, error) {
	sp, err := openSpool("forward", dir, sc, host, log)
	if err != nil {
		return nil, err
	}
	f := &forwardInput{spool: sp}
	f.srv, err = forward.Listen(cfg, func(ctx context.Context, m *forward.Message) error {
		return pipeline.ReceiveRetrying(ctx, f.spool, "forward", forward.Envelopes(host, m, &f.seq, time.Now()), forwardWait)
	}, log)
	if err != nil {
		sp.buf.Close()
		return nil, err
	}
	f.listen = f.srv.Addr()
	log.Info("shipper: receiving Fluent Forward (tcp)", "addr", f.srv.Addr(), "spool", dir)
	return f, nil
}

func (f *forwardInput) run(ctx context.Context, items chan<- collector.Item) {
	stopFeed := f.startFeed(items)
	<-ctx.Done()
	f.srv.Close() // a message the spool refuses now is not acknowledged: its sender sends it again
	stopFeed()
}

func (f *forwardInput) close() {
	f.srv.Close()
	f.buf.Close()
}
