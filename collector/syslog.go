package collector

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/logweave/logweave/filters"
	"github.com/logweave/logweave/inputs/ingest"
	"github.com/logweave/logweave/inputs/syslog"
	"github.com/logweave/logweave/internal/malformed"
	"github.com/logweave/logweave/internal/recvqueue"
	"github.com/logweave/logweave/pipeline"
)

// syslogInput feeds syslog messages through the filters into the sink in
// batches (up to 1000 messages, 4 MiB or 100 ms). Syslog has no
// acknowledgement: a message is safe once its batch is written. While the
// sink refuses, the bounded queue (10,000 messages, 64 MiB) fills and the
// receiver waits: TCP senders are held back, UDP datagrams wait in the
// socket's receive buffer.
type syslogInput struct {
	srv   *syslog.Server
	queue *recvqueue.Queue
	proc  *filters.Processor
	sink  ingest.Sink
	log   *slog.Logger
	loc   *time.Location
	seq   atomic.Int64
	wg    sync.WaitGroup
	stop  context.CancelFunc
}

func startSyslog(cfg syslog.Config, proc *filters.Processor, sink ingest.Sink, log *slog.Logger) (*syslogInput, error) {
	loc, err := time.LoadLocation(cfg.Timezone)
	if err != nil {
		return nil, err
	}
	s := &syslogInput{queue: recvqueue.NewQueue(10000, 64<<20), proc: proc, sink: sink, log: log, loc: loc}
	srv, err := syslog.Listen(cfg, func(msg []byte, _ time.Time) {
		if !s.queue.Put(bytes.Clone(msg)) {
			s.log.Warn("syslog: message dropped at shutdown")
		}
	}, log)
	if err != nil {
		return nil, err
	}
	s.srv = srv
	ctx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.run(ctx)
	}()
	log.Info("syslog: listening (udp and tcp)", "addr", srv.Addr())
	return s, nil
}

func (s *syslogInput) run(ctx context.Context) {
	recvqueue.Batches(ctx, s.queue, nil, batching, func(batch []recvqueue.Received) {
		recs := make([]pipeline.Record, 0, len(batch))
		var ev pipeline.Event
		for _, m := range batch {
			msg, ok := syslog.Parse(m.Payload, m.At, s.loc)
			if !ok {
				malformed.Count("syslog", "no_header")
			}
			env := pipeline.Envelope{
				ID:     pipeline.EventID("syslog", "", s.seq.Add(1), m.At.UnixNano(), m.Payload),
				ReadAt: m.At,
				Line:   syslog.Map(&msg, ok),
			}
			recs = append(recs, s.proc.Process(&env, &ev, nil))
		}
		storeBatch(ctx, s.sink, "syslog", recs, s.log)
	})
}

// Addr is where syslog is received.
func (s *syslogInput) Addr() string { return s.srv.Addr() }

// close stops receiving and stores what was received.
func (s *syslogInput) close() error {
	t := time.AfterFunc(5*time.Second, s.queue.GiveUp)
	defer t.Stop()
	err := s.srv.Close()
	s.stop()
	s.wg.Wait()
	return err
}
