package shipper

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/logweave/logweave/buffer"
	"github.com/logweave/logweave/filters/privacy"
	"github.com/logweave/logweave/internal/chanx"
	"github.com/logweave/logweave/internal/recvqueue"
	"github.com/logweave/logweave/outputs/collector"
	"github.com/logweave/logweave/pipeline"
)

var (
	spoolDropped = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "logweave_shipper_spool_dropped_total",
		Help: "Messages a listening input (gelf, syslog) dropped, by input and reason: shutdown (received while stopping and the spool could not take them), too_large (one message larger than spool.max_bytes). Otherwise the receiver waits while the spool cannot take more."},
		[]string{"input", "reason"})
	spooled = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "logweave_shipper_spooled_total", Help: "Messages a listening input (gelf, syslog, forward) wrote to its on-disk spool."},
		[]string{"input"})
	spoolBytes = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "logweave_shipper_spool_bytes", Help: "Bytes in a listening input's spool not yet acknowledged by a collector."},
		[]string{"input", "listen"})
)

// SpoolConfig bounds the on-disk spool of a listening input (gelf, syslog,
// forward).
type SpoolConfig struct {
	MaxBytes pipeline.ByteSize `yaml:"max_bytes"`
}

// DefaultSpoolConfig is a listening input's spool unless configured.
func DefaultSpoolConfig() SpoolConfig { return SpoolConfig{MaxBytes: 256 << 20} }

// listener is a listening input (gelf, syslog, forward): it keeps what it
// receives in its spool and feeds the spool to the sender.
type listener interface {
	// run receives and feeds until ctx ends; then it stops receiving and
	// spools what was received.
	run(ctx context.Context, items chan<- collector.Item)
	// Addr is where it listens.
	Addr() string
	// refusing says why the spool takes nothing now ("" while it does).
	refusing() string
	// close stops receiving (if run did not) and closes the spool.
	close()
	// redactWith redacts every message before it is spooled.
	redactWith(r *privacy.Redactor)
}

func (s *spool) redactWith(r *privacy.Redactor) { s.red = r }

// spool keeps what a listening input received on disk until a collector
// acknowledged it: such senders cannot send again (GELF, syslog) or are
// acknowledged once it is spooled (Forward), so while no collector is
// reachable their messages wait here. When the spool cannot take more
// (spool.max_bytes reached, or its disk full) the input waits, so its
// senders are held back, and /readyz says why.
type spool struct {
	input  string // gelf, syslog, forward
	listen string
	buf    *buffer.Buffer
	host   string
	log    *slog.Logger
	seq    atomic.Int64
	wg     sync.WaitGroup

	refuse atomic.Pointer[error] // why the spool refuses now; nil when it takes messages
	red    *privacy.Redactor     // privacy:, before anything is spooled; nil: off
}

func spoolDir(state, input string, i int) string {
	return filepath.Join(state, fmt.Sprintf("%s-spool-%d", input, i))
}

func openSpool(input, dir string, cfg SpoolConfig, host string, log *slog.Logger) (*spool, error) {
	b, err := buffer.Open(buffer.Options{Path: dir, MaxBytes: int64(cfg.MaxBytes), SegmentBytes: min(64<<20, max(int64(cfg.MaxBytes)/8, 1<<20)), Logger: log})
	if err != nil {
		return nil, fmt.Errorf("%s spool %s: %w", input, dir, err)
	}
	return &spool{input: input, buf: b, host: host, log: log}, nil
}

// Receive makes spool a pipeline.Receiver: envelopes appended (fsynced)
// in one try. When the spool refuses (full, or its disk full) it says
// pipeline.ErrFull, and /readyz says why until it takes messages again.
// Envelopes too large together for the spool (spool.max_bytes) are
// appended in halves; one too large alone is left out, the others
// appended, and pipeline.ErrTooLarge says so.
func (s *spool) Receive(_ context.Context, _ string, envs []pipeline.Envelope) error {
	recs := make([][]byte, len(envs))
	for i := range envs {
		if s.red != nil {
			envs[i].Line, _ = s.red.RedactLine(nil, envs[i].Line)
		}
		recs[i] = envs[i].AppendJSON(nil)
	}
	err := s.appendRecs(recs)
	switch {
	case err == nil:
		if s.refuse.Swap(nil) != nil {
			s.log.Info("shipper: the " + s.input + " spool takes messages again")
		}
		spoolBytes.WithLabelValues(s.input, s.listen).Set(float64(s.buf.Stats().Pending))
		return nil
	case errors.Is(err, buffer.ErrTooLarge):
		return fmt.Errorf("%w: %w", pipeline.ErrTooLarge, err)
	}
	if s.refuse.Swap(&err) == nil {
		s.log.Error("shipper: the "+s.input+" spool refuses messages; holding them and receiving no more until it takes them", "messages", len(recs), "error", err)
	}
	if errors.Is(err, buffer.ErrFull) {
		return fmt.Errorf("%w: %w", pipeline.ErrFull, err)
	}
	return err
}

func (s *spool) appendRecs(recs [][]byte) error {
	err := s.buf.Append(recs)
	if errors.Is(err, buffer.ErrTooLarge) && len(recs) > 1 {
		errA := s.appendRecs(recs[:len(recs)/2])
		if errA != nil && !errors.Is(errA, buffer.ErrTooLarge) {
			return errA
		}
		if errB := s.appendRecs(recs[len(recs)/2:]); errB != nil {
			return errB
		}
		return errA
	}
	if err == nil {
		spooled.WithLabelValues(s.input).Add(float64(len(recs)))
	}
	return err
}

// Addr is where the input listens.
func (s *spool) Addr() string { return s.listen }

// refusing says why the spool takes no messages now ("" while it does).
func (s *spool) refusing() string {
	if e := s.refuse.Load(); e != nil {
		return (*e).Error()
	}
	return ""
}

// spoolMark acknowledges spooled messages: once the item carrying it was
// acknowledged, everything before pos is committed.
type spoolMark struct {
	spool  *buffer.Buffer
	pos    buffer.Position
	commit bool
}

// feed reads the spool from its cursor and hands the messages to the
// sender; the last one of each read carries the position to commit.
func (s *spool) feed(ctx context.Context, items chan<- collector.Item) {
	for {
		recs, pos, err := s.buf.Read(ctx, 500, 1<<20)
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, buffer.ErrClosed) {
				s.log.Error("shipper: reading the "+s.input+" spool failed", "error", err)
			}
			return
		}
		for i, r := range recs {
			it := collector.Item{Ack: spoolMark{spool: s.buf, pos: pos, commit: i == len(recs)-1}}
			if !pipeline.ParseEnvelope(r, &it.Envelope) {
				it.Envelope = pipeline.Envelope{Line: r}
			}
			it.Envelope.Line = append([]byte(nil), it.Envelope.Line...)
			if chanx.Send(ctx, items, it) != nil {
				return
			}
		}
	}
}

// startFeed feeds the spool to the sender until the returned stop is
// called (after the input stopped receiving: what it spooled last is fed
// too, as long as the sender runs).
func (s *spool) startFeed(items chan<- collector.Item) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.feed(ctx, items)
	}()
	return func() {
		cancel()
		s.wg.Wait()
	}
}

// queued is a listening input without acknowledgements (GELF, syslog): its
// receiver puts messages in a bounded queue, taken in batches (one fsync
// each) into the spool. While the spool refuses, the queue fills and the
// receiver waits: TCP senders are held back, UDP datagrams wait in the
// socket's receive buffer (the kernel drops and counts what overflows it).
type queued struct {
	*spool
	srv   interface{ Close() error }
	queue *recvqueue.Queue
	join  recvqueue.Joiner // nil: none
	// envelopes wraps a batch received for the spool.
	envelopes func([]recvqueue.Received) []pipeline.Envelope
}

// spoolBatching bounds a batch written to a spool: 2000 messages, 4 MiB, or
// what came in 20 ms.
var spoolBatching = recvqueue.Batching{Messages: 2000, Bytes: 4 << 20, Every: 20 * time.Millisecond}

func (q *queued) run(ctx context.Context, items chan<- collector.Item) {
	stopFeed := q.startFeed(items)
	// Until ctx ends a batch the spool refuses is tried again; after it,
	// once more, and what that does not take is lost.
	recvCtx, stopRecv := context.WithCancel(context.Background())
	stored := make(chan struct{})
	go func() {
		defer close(stored)
		recvqueue.Batches(recvCtx, q.queue, q.join, spoolBatching, func(batch []recvqueue.Received) {
			switch err := pipeline.ReceiveUnacked(ctx, q.spool, q.input, q.envelopes(batch), nil); {
			case errors.Is(err, pipeline.ErrTooLarge): // a message larger than the spool
				spoolDropped.WithLabelValues(q.input, "too_large").Inc()
				q.log.Error("shipper: a message larger than the "+q.input+" spool (spool.max_bytes) was dropped", "error", err)
			case err != nil:
				spoolDropped.WithLabelValues(q.input, "shutdown").Add(float64(len(batch)))
				q.log.Error("shipper: stopping while the "+q.input+" spool refuses; messages lost", "messages", len(batch), "error", err)
			}
		})
	}()
	<-ctx.Done()
	// The receiver reads what its sockets hold, for up to 5 s.
	t := time.AfterFunc(5*time.Second, q.queue.GiveUp)
	q.srv.Close()
	t.Stop()
	stopRecv()
	<-stored
	stopFeed() // the spool is closed by the shipper, after the last ack
}

// put is the receiver's handler: it queues a message, waiting for room.
func (q *queued) put(p []byte) {
	if !q.queue.Put(p) {
		spoolDropped.WithLabelValues(q.input, "shutdown").Inc()
	}
}

func (q *queued) close() {
	q.srv.Close()
	q.buf.Close()
}
