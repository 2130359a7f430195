// Package collector wires the collector: the HTTP ingest, the filters, the
// durable buffer, and the indexer that moves buffered records to
// Elasticsearch (or files) and commits only what was delivered.
package collector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/logweave/logweave/buffer"
	"github.com/logweave/logweave/filters"
	"github.com/logweave/logweave/inputs/ingest"
	"github.com/logweave/logweave/outputs/elasticsearch"
	"github.com/logweave/logweave/outputs/file"
	"github.com/logweave/logweave/pipeline"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Output receives batches from the indexer; Write returns nil only when
// every record was delivered (or dead-lettered).
type Output interface {
	Write(ctx context.Context, recs []pipeline.Record) error
}

// Collector is one running collector.
type Collector struct {
	cfg *Config
	log *slog.Logger
	buf *buffer.Buffer
	out Output
	ln  net.Listener
	srv *http.Server

	// DrainTimeout bounds how long Shutdown waits for the batch being
	// indexed; what is not delivered by then stays in the buffer.
	DrainTimeout time.Duration

	indexed  atomic.Int64
	lastErr  atomic.Value // string
	stopRead context.CancelFunc
	stopOut  context.CancelFunc
	wg       sync.WaitGroup
	closeOut func() error
}

// New opens the buffer and the output and binds the listener; Start serves.
func New(cfg *Config, log *slog.Logger) (*Collector, error) {
	if log == nil {
		log = slog.Default()
	}
	c := &Collector{cfg: cfg, log: log, DrainTimeout: 10 * time.Second}
	idx, err := pipeline.ParseIndexPattern(cfg.Elasticsearch.Index)
	if err != nil {
		return nil, fmt.Errorf("elasticsearch.index: %w", err)
	}
	if len(cfg.Elasticsearch.URLs) > 0 {
		o, err := elasticsearch.New(cfg.Elasticsearch, log)
		if err != nil {
			return nil, err
		}
		c.out = o
		log.Info("output: elasticsearch", "urls", cfg.Elasticsearch.URLs, "index", cfg.Elasticsearch.Index)
	} else {
		o, err := file.New(cfg.FileOutput)
		if err != nil {
			return nil, err
		}
		c.out, c.closeOut = o, o.Close
		log.Info("output: files", "path", cfg.FileOutput.Path, "index", cfg.Elasticsearch.Index)
	}
	c.buf, err = buffer.Open(buffer.Options{
		Path: cfg.Buffer.Path, MaxBytes: int64(cfg.Buffer.MaxBytes), SegmentBytes: int64(cfg.Buffer.SegmentBytes), Logger: log,
	})
	if err != nil {
		return nil, fmt.Errorf("buffer.path: %w", err)
	}
	c.ln, err = net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		c.buf.Close()
		return nil, fmt.Errorf("http.listen: %w", err)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "logweave_buffer_bytes", Help: "Bytes on disk in the embedded buffer."},
			func() float64 { return float64(c.buf.Stats().Bytes) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "logweave_buffer_pending_bytes", Help: "Buffered bytes not yet delivered."},
			func() float64 { return float64(c.buf.Stats().Pending) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "logweave_buffer_max_bytes", Help: "buffer.max_bytes."},
			func() float64 { return float64(cfg.Buffer.MaxBytes) }),
	)
	mux := http.NewServeMux()
	mux.Handle("/v1/events", &ingest.Handler{
		Processor:    filters.NewProcessor(idx, cfg.Correlation.RequestIDFields),
		Sink:         bufferSink{c.buf},
		MaxBodyBytes: int64(cfg.HTTP.MaxBodyBytes),
		Log:          log,
	})
	mux.Handle("/metrics", promhttp.HandlerFor(prometheus.Gatherers{prometheus.DefaultGatherer, reg}, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", c.readyz)
	c.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return c, nil
}

// Addr is the bound HTTP address (useful with port 0).
func (c *Collector) Addr() string { return c.ln.Addr().String() }

// Indexed is how many records the indexer delivered since start.
func (c *Collector) Indexed() int64 { return c.indexed.Load() }

// Start serves HTTP and starts the indexer.
func (c *Collector) Start() {
	readCtx, stopRead := context.WithCancel(context.Background())
	outCtx, stopOut := context.WithCancel(context.Background())
	c.stopRead, c.stopOut = stopRead, stopOut
	c.wg.Add(2)
	go func() {
		defer c.wg.Done()
		if err := c.srv.Serve(c.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			c.log.Error("http server", "error", err)
		}
	}()
	go func() {
		defer c.wg.Done()
		c.index(readCtx, outCtx)
	}()
	c.log.Info("collector started", "listen", c.Addr(), "buffer", c.cfg.Buffer.Path)
}

// index moves batches from the buffer to the output, committing each batch
// only after the output accepted all of it.
func (c *Collector) index(readCtx, outCtx context.Context) {
	var recs []pipeline.Record
	for {
		raws, pos, err := c.buf.Read(readCtx, c.cfg.Indexer.BatchSize, int(c.cfg.Indexer.BatchBytes))
		if err != nil {
			return // shutting down
		}
		recs = recs[:0]
		for _, raw := range raws {
			var r pipeline.Record
			if err := r.UnmarshalBinary(raw); err != nil {
				c.log.Error("buffer: undecodable record skipped", "error", err)
				continue
			}
			recs = append(recs, r)
		}
		if err := c.out.Write(outCtx, recs); err != nil {
			c.lastErr.Store(err.Error())
			c.log.Warn("indexer stopped before the batch was delivered; it stays buffered", "events", len(recs), "error", err)
			return
		}
		if err := c.buf.Commit(pos); err != nil {
			c.log.Error("buffer: commit failed; the batch may be delivered again", "error", err)
		}
		c.indexed.Add(int64(len(recs)))
	}
}

func (c *Collector) readyz(w http.ResponseWriter, _ *http.Request) {
	st := c.buf.Stats()
	if st.Bytes >= st.MaxBytes*9/10 {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "not ready: buffer %d of %d bytes full\n", st.Bytes, st.MaxBytes)
		return
	}
	fmt.Fprintln(w, "ready")
}

// Shutdown stops accepting, lets in-flight requests finish (their batches
// are durable when answered), gives the indexer DrainTimeout to deliver its
// current batch, and closes the buffer. Safe to call without Start.
func (c *Collector) Shutdown(ctx context.Context) error {
	err := c.srv.Shutdown(ctx)
	if c.stopRead != nil {
		c.stopRead()
		done := make(chan struct{})
		go func() { c.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(c.DrainTimeout):
			c.stopOut()
			<-done
		case <-ctx.Done():
			c.stopOut()
			<-done
		}
		c.stopOut()
	} else {
		c.ln.Close()
	}
	if berr := c.buf.Close(); err == nil {
		err = berr
	}
	if c.closeOut != nil {
		if cerr := c.closeOut(); err == nil {
			err = cerr
		}
	}
	c.log.Info("collector stopped", "indexed", c.Indexed())
	return err
}

// bufferSink makes ingest batches durable in the disk buffer.
type bufferSink struct{ b *buffer.Buffer }

func (s bufferSink) Write(_ context.Context, recs []pipeline.Record) error {
	var n int
	for i := range recs {
		n += len(recs[i].Doc) + len(recs[i].ID) + len(recs[i].Index) + len(recs[i].Key) + 16
	}
	arena := make([]byte, 0, n)
	raws := make([][]byte, len(recs))
	for i := range recs {
		start := len(arena)
		arena = recs[i].AppendBinary(arena)
		raws[i] = arena[start:]
	}
	err := s.b.Append(raws)
	if errors.Is(err, buffer.ErrFull) {
		return ingest.ErrFull
	}
	return err
}
