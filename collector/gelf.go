package collector

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/logweave/logweave/filters"
	"github.com/logweave/logweave/inputs/gelf"
	"github.com/logweave/logweave/inputs/ingest"
	"github.com/logweave/logweave/internal/recvqueue"
	"github.com/logweave/logweave/pipeline"
)

var gelfDropped = promauto.NewCounter(prometheus.CounterOpts{
	Name: "logweave_gelf_dropped_total", Help: "GELF messages dropped at shutdown because the buffer refused them."})

// gelfInput feeds GELF messages through the filters into the sink in
// batches. GELF has no acknowledgement: a message is safe once the sink
// wrote its batch. While the sink refuses (or is slower than a burst), the
// bounded queue fills and the receiver waits: TCP senders are held back,
// and UDP datagrams wait in the socket's receive buffer (what overflows it
// the kernel drops and counts: logweave_gelf_udp_rcvbuf_errors_total).
type gelfInput struct {
	srv   *gelf.Server
	queue *recvqueue.Queue
	join  *gelf.Joiner
	proc  *filters.Processor
	sink  ingest.Sink
	log   *slog.Logger
	seq   atomic.Int64
	wg    sync.WaitGroup
	stop  context.CancelFunc
}

// batching bounds a batch of GELF or syslog messages: 1000 messages, 4 MiB,
// or what came in 100 ms.
var batching = recvqueue.Batching{Messages: 1000, Bytes: 4 << 20, Every: 100 * time.Millisecond}

// storeBatch writes a batch an input without acknowledgements (GELF,
// syslog) received, trying again with backoff while the sink refuses, until
// it is written or ctx ends (shutdown); then once more, and what that does
// not store is lost, and logged.
func storeBatch(ctx context.Context, sink ingest.Sink, input string, recs []pipeline.Record, log *slog.Logger) {
	for backoff := 50 * time.Millisecond; ; backoff = min(backoff*2, 2*time.Second) {
		err := sink.Write(context.Background(), recs)
		if err == nil {
			ingest.Received(input, len(recs))
			return
		}
		if ctx.Err() != nil {
			log.Error(input+": batch lost at shutdown", "events", len(recs), "error", err)
			return
		}
		if !errors.Is(err, ingest.ErrFull) {
			log.Warn(input+": storing a batch failed; retrying", "error", err, "events", len(recs))
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
	}
}

func startGELF(cfg gelf.Config, proc *filters.Processor, sink ingest.Sink, log *slog.Logger) (*gelfInput, error) {
	g := &gelfInput{queue: recvqueue.NewQueue(10000, int64(cfg.MaxPendingBytes)), join: gelf.NewJoiner(int(cfg.MaxMessageBytes), time.Second), proc: proc, sink: sink, log: log}
	srv, err := gelf.Listen(cfg, func(p []byte, _ string) {
		if !g.queue.Put(p) {
			gelfDropped.Inc()
		}
	}, log)
	if err != nil {
		return nil, err
	}
	g.srv = srv
	ctx, cancel := context.WithCancel(context.Background())
	g.stop = cancel
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		g.run(ctx)
	}()
	log.Info("gelf: listening (udp and tcp)", "addr", srv.Addr())
	return g, nil
}

func (g *gelfInput) run(ctx context.Context) {
	recvqueue.Batches(ctx, g.queue, g.join, batching, func(batch []recvqueue.Received) {
		recs := make([]pipeline.Record, 0, len(batch))
		var ev pipeline.Event
		for _, m := range batch {
			line, _ := gelf.Map(m.Payload) // not a JSON object: its text, tagged _gelfparsefailure
			env := pipeline.Envelope{
				ID:     pipeline.EventID("gelf", "", g.seq.Add(1), m.At.UnixNano(), m.Payload),
				ReadAt: m.At,
				Line:   line,
			}
			recs = append(recs, g.proc.Process(&env, &ev, nil))
		}
		storeBatch(ctx, g.sink, "gelf", recs, g.log)
	})
}

// Addr is where GELF is received.
func (g *gelfInput) Addr() string { return g.srv.Addr() }

// close stops receiving and stores what was received.
func (g *gelfInput) close() error {
	t := time.AfterFunc(5*time.Second, g.queue.GiveUp)
	defer t.Stop()
	err := g.srv.Close()
	g.stop()
	g.wg.Wait()
	return err
}
