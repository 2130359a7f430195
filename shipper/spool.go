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
}

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

	refuse   atomic.Pointer[error] // why the spool refuses now; nil when it takes messages
	stopping chan struct{}         // closed when the input is told to stop
}

func spoolDir(state, input string, i int) string {
	return filepath.Join(state, fmt.Sprintf("%s-spool-%d", input, i))
}

func openSpool(input, dir string, cfg SpoolConfig, host string, log *slog.Logger) (*spool, error) {
	b, err := buffer.Open(buffer.Options{Path: dir, MaxBytes: int64(cfg.MaxBytes), SegmentBytes: min(64<<20, max(int64(cfg.MaxBytes)/8, 1<<20)), Logger: log})
	if err != nil {
		return nil, fmt.Errorf("%s spool %s: %w", input, dir, err)
	}
	return &spool{input: input, buf: b, host: host, log: log, stopping: make(chan struct{})}, nil
}

// append appends records, trying again while the spool refuses them (full,
// or its disk full) until it takes them, ctx ends or the input stops: then
// it returns why it did not. Records too large together for the spool
// (spool.max_bytes) are appended in halves; one too large alone is refused
// at once, the others appended (ErrTooLarge says some were left out).
func (s *spool) append(ctx context.Context, recs [][]byte) error {
	backoff := 50 * time.Millisecond
	for len(recs) > 0 {
		err := s.buf.Append(recs)
		if errors.Is(err, buffer.ErrTooLarge) && len(recs) > 1 {
			// Both halves are tried; ErrTooLarge then says that one or
			// more records too large alone were left out.
			errA := s.append(ctx, recs[:len(recs)/2])
			if errA != nil && !errors.Is(errA, buffer.ErrTooLarge) {
				return errA
			}
			if errB := s.append(ctx, recs[len(recs)/2:]); errB != nil {
				return errB
			}
			return errA
		}
		if errors.Is(err, buffer.ErrTooLarge) {
			return err
		}
		if err == nil {
			spooled.WithLabelValues(s.input).Add(float64(len(recs)))
			if s.refuse.Swap(nil) != nil {
				s.log.Info("shipper: the " + s.input + " spool takes messages again")
			}
			break
		}
		if s.refuse.Swap(&err) == nil {
			s.log.Error("shipper: the "+s.input+" spool refuses messages; holding them and receiving no more until it takes them", "messages", len(recs), "error", err)
		}
		select {
		case <-s.stopping:
			return err
		case <-ctx.Done():
			return err
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, time.Second)
	}
	spoolBytes.WithLabelValues(s.input, s.listen).Set(float64(s.buf.Stats().Pending))
	return nil
}

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
			select {
			case items <- it:
			case <-ctx.Done():
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
	// envelopes wraps a batch received in envelopes for the spool.
	envelopes func([]recvqueue.Received) [][]byte
}

// spoolBatching bounds a batch written to a spool: 2000 messages, 4 MiB, or
// what came in 20 ms.
var spoolBatching = recvqueue.Batching{Messages: 2000, Bytes: 4 << 20, Every: 20 * time.Millisecond}

func (q *queued) run(ctx context.Context, items chan<- collector.Item) {
	stopFeed := q.startFeed(items)
	recvCtx, stopRecv := context.WithCancel(context.Background())
	stored := make(chan struct{})
	go func() {
		defer close(stored)
		recvqueue.Batches(recvCtx, q.queue, q.join, spoolBatching, func(batch []recvqueue.Received) {
			recs := q.envelopes(batch)
			switch err := q.append(context.Background(), recs); {
			case errors.Is(err, buffer.ErrTooLarge): // a message larger than the spool
				spoolDropped.WithLabelValues(q.input, "too_large").Inc()
				q.log.Error("shipper: a message larger than the "+q.input+" spool (spool.max_bytes) was dropped", "error", err)
			case err != nil: // only once stopping
				spoolDropped.WithLabelValues(q.input, "shutdown").Add(float64(len(recs)))
				q.log.Error("shipper: stopping while the "+q.input+" spool refuses; messages lost", "messages", len(recs), "error", err)
			}
		})
	}()
	<-ctx.Done()
	// From here what the spool refuses is lost, not waited for; the
	// receiver reads what its sockets hold, for up to 5 s.
	close(q.stopping)
	t := time.AfterFunc(5*time.Second, q.queue.GiveUp)
	q.srv.Close()
	t.Stop()
	stopRecv()
	<-stored
	stopFeed() // the spool is closed by the shipper, after the last ack
}

// put is the receiver's handler: it queues a message (cloned when the
// receiver reuses its buffer), waiting for room.
func (q *queued) put(p []byte) {
	if !q.queue.Put(p) {
		spoolDropped.WithLabelValues(q.input, "shutdown").Inc()
	}
}

func (q *queued) close() {
	q.srv.Close()
	q.buf.Close()
}
