package collector

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/logweave/logweave/filters"
	"github.com/logweave/logweave/inputs/beats"
	"github.com/logweave/logweave/inputs/forward"
	"github.com/logweave/logweave/inputs/gelf"
	"github.com/logweave/logweave/inputs/ingest"
	"github.com/logweave/logweave/inputs/otlp"
	"github.com/logweave/logweave/inputs/syslog"
	"github.com/logweave/logweave/internal/recvqueue"
	"github.com/logweave/logweave/pipeline"
)

// The network inputs, wired: each decodes its protocol into envelopes
// (inputs/<protocol>: Listen and Envelopes) and hands them to a receiver
// that runs the filters into the sink (the buffer, or Kafka).

var gelfDropped = promauto.NewCounter(prometheus.CounterOpts{
	Name: "logweave_gelf_dropped_total", Help: "GELF messages dropped at shutdown because the buffer refused them."})

// receiver is the collector's pipeline.Receiver: envelopes through the
// filters into the sink (a GELF message, as received, mapped first; one
// that is not a JSON object is kept as its text, tagged _gelfparsefailure).
type receiver struct {
	proc *filters.Processor
	sink pipeline.Sink
}

func (r receiver) Receive(ctx context.Context, input string, envs []pipeline.Envelope) error {
	recs := make([]pipeline.Record, 0, len(envs))
	var ev pipeline.Event
	// The documents are encoded one after the other into one buffer, sized
	// for them (the sink copies what it keeps), not each into its own.
	size := 0
	for i := range envs {
		size += len(envs[i].Line) + 384
	}
	arena := make([]byte, 0, size)
	for i := range envs {
		env := &envs[i]
		if env.Format == "gelf" {
			env.Line, _ = gelf.Map(env.Line)
			env.Format = ""
		}
		rec := r.proc.Process(env, &ev, arena[len(arena):])
		if n := len(rec.Doc) + len(rec.Trace); n <= cap(arena)-len(arena) {
			arena = arena[:len(arena)+n] // it is in the arena: the next goes after it
		}
		recs = append(recs, rec)
	}
	if err := r.sink.Write(ctx, recs); err != nil {
		return err
	}
	ingest.Received(input, len(recs))
	return nil
}

// ackedWait bounds how long the events of a protocol with acknowledgements
// (Forward, Beats, OTLP) wait for a full buffer: past it the sender gets no
// acknowledgement (Forward, Beats: the connection is closed; OTLP: 429),
// and sends them again later.
const ackedWait = 30 * time.Second

// startForward: each message's entries, acknowledged once durable.
func startForward(cfg forward.Config, r pipeline.Receiver, log *slog.Logger) (*forward.Server, error) {
	var seq atomic.Int64
	srv, err := forward.Listen(cfg, func(ctx context.Context, m *forward.Message) error {
		return pipeline.ReceiveRetrying(ctx, r, "forward", forward.Envelopes("", m, &seq, time.Now()), ackedWait)
	}, log)
	if err != nil {
		return nil, err
	}
	log.Info("forward: listening (tcp)", "addr", srv.Addr())
	return srv, nil
}

// startBeats: each window's events, acknowledged once durable.
func startBeats(cfg beats.Config, r pipeline.Receiver, log *slog.Logger) (*beats.Server, error) {
	srv, err := beats.Listen(cfg, func(ctx context.Context, events [][]byte) error {
		return pipeline.ReceiveRetrying(ctx, r, "beats", beats.Envelopes("", events, time.Now()), ackedWait)
	}, log)
	if err != nil {
		return nil, err
	}
	log.Info("beats: listening (tcp)", "addr", srv.Addr())
	return srv, nil
}

// startOTLP: each request's records, answered once durable.
func startOTLP(cfg otlp.Config, r pipeline.Receiver, log *slog.Logger) (*otlp.Server, error) {
	srv, err := otlp.Listen(cfg, func(ctx context.Context, recs []otlp.Record) error {
		return pipeline.ReceiveRetrying(ctx, r, "otlp", otlp.Envelopes("", recs, time.Now()), ackedWait)
	}, log)
	if err != nil {
		return nil, err
	}
	log.Info("otlp: listening", "http", srv.HTTPAddr(), "grpc", srv.GRPCAddr())
	return srv, nil
}

// queuedInput is an input without acknowledgements (GELF, syslog): its
// receiver puts messages in a bounded queue (10,000 messages), taken in
// batches (1000 messages, 4 MiB or 100 ms) into the receiver. A message is
// safe once its batch is written; while the buffer refuses (or a burst
// outruns it), the queue fills and the receiver waits: TCP senders are held
// back, UDP datagrams wait in the socket's receive buffer (what overflows
// it the kernel drops and counts).
type queuedInput struct {
	srv   interface{ Close() error }
	addr  string
	queue *recvqueue.Queue
	wg    sync.WaitGroup
	stop  context.CancelFunc
}

// batching bounds a batch of GELF or syslog messages.
var batching = recvqueue.Batching{Messages: 1000, Bytes: 4 << 20, Every: 100 * time.Millisecond}

// runQueued takes q into r until close; wrap turns a batch into envelopes.
func runQueued(input string, q *recvqueue.Queue, j recvqueue.Joiner, wrap func([]recvqueue.Received) []pipeline.Envelope, r pipeline.Receiver, log *slog.Logger) *queuedInput {
	in := &queuedInput{queue: q}
	ctx, cancel := context.WithCancel(context.Background())
	in.stop = cancel
	in.wg.Add(1)
	go func() {
		defer in.wg.Done()
		recvqueue.Batches(ctx, q, j, batching, func(batch []recvqueue.Received) {
			warned := false
			err := pipeline.ReceiveUnacked(ctx, r, input, wrap(batch), func(err error) {
				if !warned && !errors.Is(err, pipeline.ErrFull) {
					log.Warn(input+": storing a batch failed; retrying", "error", err, "events", len(batch))
					warned = true
				}
			})
			if err != nil {
				log.Error(input+": batch lost at shutdown", "events", len(batch), "error", err)
			}
		})
	}()
	return in
}

func startGELF(cfg gelf.Config, r pipeline.Receiver, log *slog.Logger) (*queuedInput, error) {
	q := recvqueue.NewQueue(10000, int64(cfg.MaxPendingBytes))
	srv, err := gelf.Listen(cfg, func(p []byte, _ string) {
		if !q.Put(p) {
			gelfDropped.Inc()
		}
	}, log)
	if err != nil {
		return nil, err
	}
	var seq atomic.Int64
	in := runQueued("gelf", q, gelf.NewJoiner(int(cfg.MaxMessageBytes), time.Second), func(b []recvqueue.Received) []pipeline.Envelope {
		return gelf.Envelopes("", b, &seq)
	}, r, log)
	in.srv, in.addr = srv, srv.Addr()
	log.Info("gelf: listening (udp and tcp)", "addr", srv.Addr())
	return in, nil
}

func startSyslog(cfg syslog.Config, r pipeline.Receiver, log *slog.Logger) (*queuedInput, error) {
	loc, err := time.LoadLocation(cfg.Timezone)
	if err != nil {
		return nil, err
	}
	q := recvqueue.NewQueue(10000, 64<<20)
	srv, err := syslog.Listen(cfg, func(msg []byte, _ time.Time) {
		if !q.Put(bytes.Clone(msg)) {
			log.Warn("syslog: message dropped at shutdown")
		}
	}, log)
	if err != nil {
		return nil, err
	}
	var seq atomic.Int64
	in := runQueued("syslog", q, nil, func(b []recvqueue.Received) []pipeline.Envelope {
		return syslog.Envelopes("", b, loc, &seq)
	}, r, log)
	in.srv, in.addr = srv, srv.Addr()
	log.Info("syslog: listening (udp and tcp)", "addr", srv.Addr())
	return in, nil
}

// Addr is where the input receives.
func (in *queuedInput) Addr() string { return in.addr }

// close stops receiving (reading what the sockets hold, for up to 5 s)
// and stores what was received.
func (in *queuedInput) close() error {
	t := time.AfterFunc(5*time.Second, in.queue.GiveUp)
	defer t.Stop()
	err := in.srv.Close()
	in.stop()
	in.wg.Wait()
	return err
}
