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
		Help: "GELF messages dropped, by reason: queue_full (the spool could not keep up), spool_full (spool.max_bytes reached while no collector took them), spool_error."},
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
// while no collector is reachable the messages wait on disk (bounded by
// spool.max_bytes; beyond it they are dropped and counted).
type gelfInput struct {
	srv   *gelf.Server
	spool *buffer.Buffer
	queue chan gelfMsg
	join  *gelf.Joiner
	host  string
	log   *slog.Logger
	seq   atomic.Int64
	wg    sync.WaitGroup
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
	g := &gelfInput{spool: b, queue: make(chan gelfMsg, 32768), join: gelf.NewJoiner(int(cfg.MaxMessageBytes), time.Second), host: host, log: log}
	g.srv, err = gelf.Listen(cfg, func(p []byte, _ string) {
		select {
		case g.queue <- gelfMsg{payload: p, at: time.Now()}:
		default:
			gelfDropped.WithLabelValues("queue_full").Inc()
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
	g.srv.Close()
	g.drain()
	stopReading()
	g.wg.Wait() // the spool is closed by the shipper, after the last ack
}

// spoolLoop writes messages to the spool in batches (one fsync each),
// after joining the lines Docker split.
func (g *gelfInput) spoolLoop(ctx context.Context) {
	var batch []gelfMsg
	add := func(at time.Time, msgs [][]byte) {
		for _, p := range msgs {
			batch = append(batch, gelfMsg{payload: p, at: at})
		}
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case m := <-g.queue:
			add(m.at, g.join.Add(m.payload, m.at))
			if len(batch) < 2000 {
				continue
			}
		case now := <-tick.C:
			add(now, g.join.Expire(now))
		case <-ctx.Done():
			g.write(batch)
			return
		}
		g.write(batch)
		batch = batch[:0]
	}
}

func (g *gelfInput) drain() {
	var batch []gelfMsg
	for {
		select {
		case m := <-g.queue:
			for _, p := range g.join.Add(m.payload, m.at) {
				batch = append(batch, gelfMsg{payload: p, at: m.at})
			}
		default:
			for _, p := range g.join.Flush() {
				batch = append(batch, gelfMsg{payload: p, at: time.Now()})
			}
			g.write(batch)
			return
		}
	}
}

// write wraps messages in envelopes and appends them to the spool. The
// event id is fixed here, so a message sent twice (after a restart) is
// indexed once.
func (g *gelfInput) write(batch []gelfMsg) {
	if len(batch) == 0 {
		return
	}
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
	switch err := g.spool.Append(recs); {
	case err == nil:
		gelfSpooled.Add(float64(len(recs)))
	case errors.Is(err, buffer.ErrFull):
		gelfDropped.WithLabelValues("spool_full").Add(float64(len(recs)))
		g.log.Warn("shipper: GELF spool full (no collector took messages for a while); dropping", "messages", len(recs))
	default:
		gelfDropped.WithLabelValues("spool_error").Add(float64(len(recs)))
		g.log.Error("shipper: writing the GELF spool failed; dropping", "messages", len(recs), "error", err)
	}
	gelfSpoolBytes.WithLabelValues(g.srv.Addr()).Set(float64(g.spool.Stats().Pending))
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
