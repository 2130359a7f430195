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
	"github.com/logweave/logweave/inputs/gelf"
	"github.com/logweave/logweave/outputs/collector"
	"github.com/logweave/logweave/pipeline"
)

var (
	gelfDropped = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "logweave_shipper_gelf_dropped_total",
		Help: "GELF messages dropped, by reason: shutdown (received while stopping and the spool could not take them). Otherwise the receiver waits while the spool cannot take more: see logweave_gelf_udp_rcvbuf_errors_total."},
		[]string{"reason"})
	gelfSpooled = promauto.NewCounter(prometheus.CounterOpts{
		Name: "logweave_shipper_gelf_spooled_total", Help: "GELF messages written to the on-disk spool."})
	gelfSpoolBytes = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "logweave_shipper_gelf_spool_bytes", Help: "Bytes in the GELF spool not yet acknowledged by a collector."},
		[]string{"listen"})
)

// SpoolConfig bounds the on-disk spool of a GELF input.
type SpoolConfig struct {
	MaxBytes pipeline.ByteSize `yaml:"max_bytes"`
}

// gelfInput receives GELF and keeps every message in an on-disk spool
// until a collector acknowledged it: a GELF sender cannot send again, so
// while no collector is reachable the messages wait on disk. When the spool
// cannot take more (spool.max_bytes reached, or its disk full), the batch
// in hand is tried again until it can, the queue fills and the receiver
// waits: TCP senders are held back, UDP datagrams wait in the socket's
// receive buffer (the kernel drops and counts what overflows it), and
// /readyz says why.
type gelfInput struct {
	srv   *gelf.Server
	spool *buffer.Buffer
	queue *gelf.Queue
	join  *gelf.Joiner
	host  string
	log   *slog.Logger
	seq   atomic.Int64
	wg    sync.WaitGroup

	spoolErr atomic.Pointer[error] // why the spool refuses now; nil when it takes messages
	stopping chan struct{}         // closed when the input is told to stop
}

type gelfMsg struct {
	payload []byte
	at      time.Time
}

// spoolMark acknowledges spooled messages: once the item carrying it was
// acknowledged, everything before pos is committed.
type spoolMark struct {
	spool  *buffer.Buffer
	pos    buffer.Position
	commit bool
}

func openGELF(cfg gelf.Config, spool SpoolConfig, dir, host string, log *slog.Logger) (*gelfInput, error) {
	b, err := buffer.Open(buffer.Options{Path: dir, MaxBytes: int64(spool.MaxBytes), SegmentBytes: min(64<<20, max(int64(spool.MaxBytes)/8, 1<<20)), Logger: log})
	if err != nil {
		return nil, fmt.Errorf("gelf spool %s: %w", dir, err)
	}
	g := &gelfInput{spool: b, queue: gelf.NewQueue(32768, int64(cfg.MaxPendingBytes)), join: gelf.NewJoiner(int(cfg.MaxMessageBytes), time.Second), host: host, log: log,
		stopping: make(chan struct{})}
	g.srv, err = gelf.Listen(cfg, func(p []byte, _ string) {
		if !g.queue.Put(p) {
			gelfDropped.WithLabelValues("shutdown").Inc()
		}
	}, log)
	if err != nil {
		b.Close()
		return nil, err
	}
	log.Info("shipper: receiving GELF (udp and tcp)", "addr", g.srv.Addr(), "spool", dir)
	return g, nil
}

func gelfSpoolDir(state string, i int) string {
	return filepath.Join(state, fmt.Sprintf("gelf-spool-%d", i))
}

// run spools what arrives and feeds the spool to the sender until ctx
// ends; then it stops receiving and spools what was received.
func (g *gelfInput) run(ctx context.Context, items chan<- collector.Item) {
	readCtx, stopReading := context.WithCancel(context.Background())
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		g.feed(readCtx, items)
	}()
	g.spoolLoop(ctx)
	close(g.stopping)
	t := time.AfterFunc(5*time.Second, g.queue.GiveUp)
	closed, drained := make(chan struct{}), make(chan struct{})
	go func() { g.drain(closed); close(drained) }()
	g.srv.Close()
	t.Stop()
	close(closed)
	<-drained
	stopReading()
	g.wg.Wait() // the spool is closed by the shipper, after the last ack
}

// spoolLoop writes messages to the spool in batches (one fsync each),
// after joining the lines Docker split.
func (g *gelfInput) spoolLoop(ctx context.Context) {
	var batch []gelfMsg
	batchBytes := 0
	add := func(at time.Time, msgs [][]byte) {
		for _, p := range msgs {
			batch = append(batch, gelfMsg{payload: p, at: at})
			batchBytes += len(p)
		}
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case m := <-g.queue.C():
			g.queue.Done(m)
			add(m.At, g.join.Add(m.Payload, m.At))
			if len(batch) < 2000 && batchBytes < 4<<20 {
				continue
			}
		case now := <-tick.C:
			add(now, g.join.Expire(now))
		case <-ctx.Done():
			g.write(batch)
			return
		}
		g.write(batch)
		batch, batchBytes = batch[:0], 0
	}
}

// drain spools what the receiver hands over while it closes (it reads
// what the socket already holds first), then what is left in the queue and
// the joiner. Nothing waits for room in the spool any more: what it refuses
// now is counted as lost.
func (g *gelfInput) drain(closed <-chan struct{}) {
	var batch []gelfMsg
	add := func(m gelf.Received) {
		g.queue.Done(m)
		for _, p := range g.join.Add(m.Payload, m.At) {
			batch = append(batch, gelfMsg{payload: p, at: m.At})
		}
	}
	for open := true; open; {
		select {
		case m := <-g.queue.C():
			add(m)
			if len(batch) >= 2000 {
				g.writeOnce(batch)
				batch = batch[:0]
			}
		case <-closed:
			open = false
		}
	}
	for {
		select {
		case m := <-g.queue.C():
			add(m)
		default:
			for _, p := range g.join.Flush() {
				batch = append(batch, gelfMsg{payload: p, at: time.Now()})
			}
			g.writeOnce(batch)
			return
		}
	}
}

// write wraps messages in envelopes and appends them to the spool, trying
// again while the spool refuses (full, or its disk full) until it takes
// them or the input stops. The event id is fixed here, so a message sent
// twice (after a restart) is indexed once.
func (g *gelfInput) write(batch []gelfMsg) {
	recs := g.envelopes(batch)
	backoff := 50 * time.Millisecond
	for len(recs) > 0 {
		err := g.spool.Append(recs)
		if err == nil {
			gelfSpooled.Add(float64(len(recs)))
			if g.spoolErr.Swap(nil) != nil {
				g.log.Info("shipper: the GELF spool takes messages again")
			}
			break
		}
		if g.spoolErr.Swap(&err) == nil {
			g.log.Error("shipper: the GELF spool refuses messages; holding them and receiving no more until it takes them", "messages", len(recs), "error", err)
		}
		select {
		case <-g.stopping:
			gelfDropped.WithLabelValues("shutdown").Add(float64(len(recs)))
			g.log.Error("shipper: stopping while the GELF spool refuses; messages lost", "messages", len(recs), "error", err)
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, time.Second)
	}
	gelfSpoolBytes.WithLabelValues(g.srv.Addr()).Set(float64(g.spool.Stats().Pending))
}

// writeOnce appends without waiting (while stopping).
func (g *gelfInput) writeOnce(batch []gelfMsg) {
	recs := g.envelopes(batch)
	if len(recs) == 0 {
		return
	}
	if err := g.spool.Append(recs); err != nil {
		gelfDropped.WithLabelValues("shutdown").Add(float64(len(recs)))
		g.log.Error("shipper: stopping while the GELF spool refuses; messages lost", "messages", len(recs), "error", err)
		return
	}
	gelfSpooled.Add(float64(len(recs)))
}

func (g *gelfInput) envelopes(batch []gelfMsg) [][]byte {
	recs := make([][]byte, 0, len(batch))
	for _, m := range batch {
		// Spooled as received; the collector maps it (format gelf).
		env := pipeline.Envelope{
			ID:     pipeline.EventID(g.host, "gelf", g.seq.Add(1), m.at.UnixNano(), m.payload),
			ReadAt: m.at,
			Host:   g.host,
			Format: "gelf",
			Line:   m.payload,
		}
		recs = append(recs, env.AppendJSON(nil))
	}
	return recs
}

// refusing says why the spool takes no messages now ("" while it does).
func (g *gelfInput) refusing() string {
	if e := g.spoolErr.Load(); e != nil {
		return (*e).Error()
	}
	return ""
}

// feed reads the spool from its cursor and hands the messages to the
// sender; the last one of each read carries the position to commit.
func (g *gelfInput) feed(ctx context.Context, items chan<- collector.Item) {
	for {
		recs, pos, err := g.spool.Read(ctx, 500, 1<<20)
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, buffer.ErrClosed) {
				g.log.Error("shipper: reading the GELF spool failed", "error", err)
			}
			return
		}
		for i, r := range recs {
			it := collector.Item{Ack: spoolMark{spool: g.spool, pos: pos, commit: i == len(recs)-1}}
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

// Addr is where GELF is received.
func (g *gelfInput) Addr() string { return g.srv.Addr() }
