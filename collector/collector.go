// Package collector wires the collector: the HTTP ingest, the filters, the
// durable buffer (embedded disk buffer or Kafka), and the indexer that moves
// buffered records to Elasticsearch (or files) and commits only what was
// delivered.
package collector

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/logweave/logweave/buffer"
	"github.com/logweave/logweave/correlate"
	"github.com/logweave/logweave/filters"
	"github.com/logweave/logweave/filters/privacy"
	"github.com/logweave/logweave/inputs/beats"
	"github.com/logweave/logweave/inputs/forward"
	"github.com/logweave/logweave/inputs/ingest"
	"github.com/logweave/logweave/inputs/otlp"
	"github.com/logweave/logweave/internal/jitter"
	"github.com/logweave/logweave/internal/netlimit"
	"github.com/logweave/logweave/outputs/elasticsearch"
	"github.com/logweave/logweave/outputs/file"
	"github.com/logweave/logweave/outputs/kafka"
	"github.com/logweave/logweave/pipeline"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

var (
	outputFailures = promauto.NewCounter(prometheus.CounterOpts{
		Name: "logweave_indexer_output_failures_total", Help: "Batches the output failed to take (each is tried again; it stays buffered)."})
	outputEvents = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "logweave_output_events_total", Help: "Events an output took, by output (elasticsearch, file, kafka)."}, []string{"output"})
	connectionsRejected = promauto.NewCounter(prometheus.CounterOpts{
		Name: "logweave_http_connections_rejected_total", Help: "HTTP connections closed at once because http.max_connections were open."})
)

// Roles a collector process can take.
const (
	RoleAll    = "all"    // ingest and index
	RoleIngest = "ingest" // HTTP ingest into the buffer (Kafka)
	RoleIndex  = "index"  // buffer (Kafka) into Elasticsearch
)

// Collector is one running collector.
type Collector struct {
	cfg      *Config
	role     string
	log      *slog.Logger
	buf      *buffer.Buffer  // embedded buffer, nil with Kafka
	sink     pipeline.Sink   // nil without the ingest role
	src      pipeline.Source // nil without the index role
	out      pipeline.Output
	gatherer prometheus.Gatherer // what /metrics serves
	outName  string              // elasticsearch or file, the output label of logweave_output_events_total
	es       *elasticsearch.Output
	ln       net.Listener
	srv      *http.Server

	// DrainTimeout bounds how long Shutdown waits for the batch being
	// indexed; what is not delivered by then stays buffered.
	DrainTimeout time.Duration

	gelf    *queuedInput
	forward *forward.Server
	syslog  *queuedInput
	beats   *beats.Server
	otlp    *otlp.Server

	indexed  atomic.Int64
	outErr   atomic.Pointer[error] // the output's last error while it fails
	stopRead context.CancelFunc
	stopOut  context.CancelFunc
	wg       sync.WaitGroup
	closers  []func() error
}

// New opens the buffer, the output and the listener for role (RoleAll when
// empty); Start serves.
func New(cfg *Config, log *slog.Logger) (*Collector, error) {
	return NewRole(cfg, RoleAll, log)
}

// NewRole is New for one role.
func NewRole(cfg *Config, role string, log *slog.Logger) (c *Collector, err error) {
	if log == nil {
		log = slog.Default()
	}
	if role == "" {
		role = RoleAll
	}
	switch role {
	case RoleAll:
	case RoleIngest, RoleIndex:
		if !cfg.Kafka.Enabled() {
			return nil, fmt.Errorf("role %s needs kafka.brokers: the embedded buffer is local to one process", role)
		}
	default:
		return nil, fmt.Errorf("role %q is not all, ingest or index", role)
	}
	c = &Collector{cfg: cfg, role: role, log: log, DrainTimeout: 10 * time.Second}
	// `return nil, err` sets c to nil before this runs: close through
	// the collector made here (a start failure used to panic instead of
	// saying what failed).
	made := c
	defer func() {
		if err != nil {
			made.closeAll()
		}
	}()
	idx, err := pipeline.ParseIndexPattern(cfg.Elasticsearch.Index)
	if err != nil {
		return nil, fmt.Errorf("elasticsearch.index: %w", err)
	}
	ingesting, indexing := role != RoleIndex, role != RoleIngest

	// The buffer.
	if cfg.Kafka.Enabled() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if cfg.Kafka.CreateTopic {
			if err := kafka.EnsureTopic(ctx, cfg.Kafka); err != nil {
				log.Warn("kafka: could not make sure the topic exists", "topic", cfg.Kafka.Topic, "error", err)
			}
		}
		cancel()
		if ingesting {
			p, err := kafka.NewProducer(cfg.Kafka)
			if err != nil {
				return nil, err
			}
			c.sink = countingSink{p, outputEvents.WithLabelValues("kafka")}
			c.closers = append(c.closers, p.Close)
		}
		if indexing {
			k, err := kafka.NewConsumer(cfg.Kafka, log)
			if err != nil {
				return nil, err
			}
			c.src = k
			c.closers = append(c.closers, k.Close)
		}
		log.Info("buffer: kafka", "brokers", cfg.Kafka.Brokers, "topic", cfg.Kafka.Topic, "group", cfg.Kafka.Group, "role", role)
	} else {
		c.buf, err = buffer.Open(buffer.Options{
			Path: cfg.Buffer.Path, MaxBytes: int64(cfg.Buffer.MaxBytes), SegmentBytes: int64(cfg.Buffer.SegmentBytes), Logger: log,
		})
		if err != nil {
			return nil, fmt.Errorf("buffer.path: %w", err)
		}
		c.closers = append(c.closers, c.buf.Close)
		c.sink, c.src = bufferSink{c.buf}, &bufferSource{r: c.buf.NewReader()}
		log.Info("buffer: embedded disk buffer", "path", cfg.Buffer.Path)
	}

	// The output.
	if indexing {
		if len(cfg.Elasticsearch.URLs) > 0 {
			o, err := NewElasticsearch(cfg, log)
			if err != nil {
				return nil, err
			}
			c.out, c.es, c.outName = o, o, "elasticsearch"
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := o.Setup(ctx); err != nil {
				log.Warn("elasticsearch: index templates not installed now (run `collector setup` once the cluster is up)", "error", err)
			}
			cancel()
			log.Info("output: elasticsearch", "urls", pipeline.RedactURLs(cfg.Elasticsearch.URLs), "index", cfg.Elasticsearch.Index)
		} else {
			o, err := file.New(cfg.FileOutput)
			if err != nil {
				return nil, err
			}
			c.out, c.outName = o, "file"
			c.closers = append(c.closers, o.Close)
			log.Info("output: files", "path", cfg.FileOutput.Path, "index", cfg.Elasticsearch.Index)
		}
	}

	c.ln, err = net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		return nil, fmt.Errorf("http.listen: %w", err)
	}
	c.ln = netlimit.Listen(c.ln, cfg.HTTP.MaxConnections, connectionsRejected.Inc)
	if ingesting && !loopback(cfg.HTTP.Listen) && cfg.HTTP.Token == "" && cfg.HTTP.TLS.ClientCA == "" {
		log.Warn("http.listen is reachable from other machines with no http.token and no TLS client certificates: "+
			"anyone who can connect can write events (set http.token, and the shipper's collector.token)", "listen", cfg.HTTP.Listen)
	}
	if tc, err := cfg.HTTP.TLS.Config("http.tls"); err != nil {
		c.ln.Close()
		return nil, err
	} else if tc != nil {
		c.ln = tls.NewListener(c.ln, tc)
	}
	reg := prometheus.NewRegistry()
	if c.buf != nil {
		reg.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "logweave_buffer_bytes", Help: "Bytes on disk in the embedded buffer."},
				func() float64 { return float64(c.buf.Stats().Bytes) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "logweave_buffer_pending_bytes", Help: "Buffered bytes not yet delivered."},
				func() float64 { return float64(c.buf.Stats().Pending) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "logweave_buffer_max_bytes", Help: "buffer.max_bytes."},
				func() float64 { return float64(cfg.Buffer.MaxBytes) }),
		)
	}
	mux := http.NewServeMux()
	var redactor *privacy.Redactor
	if cfg.Privacy != nil {
		if redactor, err = privacy.New(*cfg.Privacy); err != nil {
			c.ln.Close()
			return nil, err
		}
	}
	newProcessor := func() *filters.Processor {
		p := filters.NewProcessor(idx, cfg.Correlation.RequestIDFields, cfg.Filters.Text)
		p.TraceFields = cfg.Correlation.TracesIndex != ""
		p.TimeRange = cfg.Filters.Timestamp
		p.Privacy = redactor
		return p
	}
	if ingesting && cfg.GELF.Listen != "" {
		c.gelf, err = startGELF(cfg.GELF, receiver{newProcessor(), c.sink}, log)
		if err != nil {
			return nil, fmt.Errorf("gelf.listen: %w", err)
		}
		c.closers = append(c.closers, c.gelf.close)
	}
	if ingesting && cfg.Forward.Listen != "" {
		c.forward, err = startForward(cfg.Forward, receiver{newProcessor(), c.sink}, log)
		if err != nil {
			return nil, fmt.Errorf("forward.listen: %w", err)
		}
		c.closers = append(c.closers, c.forward.Close)
	}
	if ingesting && cfg.Syslog.Listen != "" {
		c.syslog, err = startSyslog(cfg.Syslog, receiver{newProcessor(), c.sink}, log)
		if err != nil {
			return nil, fmt.Errorf("syslog.listen: %w", err)
		}
		c.closers = append(c.closers, c.syslog.close)
	}
	if ingesting && cfg.Beats.Listen != "" {
		c.beats, err = startBeats(cfg.Beats, receiver{newProcessor(), c.sink}, log)
		if err != nil {
			return nil, fmt.Errorf("beats.listen: %w", err)
		}
		c.closers = append(c.closers, c.beats.Close)
	}
	if ingesting && (cfg.OTLP.HTTPListen != "" || cfg.OTLP.GRPCListen != "") {
		c.otlp, err = startOTLP(cfg.OTLP, receiver{newProcessor(), c.sink}, log)
		if err != nil {
			return nil, fmt.Errorf("otlp.%w", err)
		}
		c.closers = append(c.closers, c.otlp.Close)
	}
	if ingesting {
		h := &ingest.Handler{
			Processor:     newProcessor(),
			Sink:          c.sink,
			MaxBodyBytes:  int64(cfg.HTTP.MaxBodyBytes),
			MaxLines:      cfg.HTTP.MaxLines,
			MaxConcurrent: cfg.HTTP.MaxConcurrentRequests,
			Token:         cfg.HTTP.Token,
			Log:           log,
		}
		mux.Handle("/v1/events", h) // NDJSON, what every shipper version sends
		mux.Handle("/v2/events", h) // the binary framing (a collector without it answers 404)
	}
	c.gatherer = prometheus.Gatherers{prometheus.DefaultGatherer, reg}
	var metrics http.Handler = promhttp.HandlerFor(c.gatherer, promhttp.HandlerOpts{})
	if cfg.HTTP.MetricsAuth {
		metrics = requireToken(cfg.HTTP.Token, metrics)
	}
	mux.Handle("/metrics", metrics)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", c.readyz)
	c.srv = &http.Server{Handler: mux, ReadHeaderTimeout: min(10*time.Second, cfg.HTTP.ReadTimeout),
		ReadTimeout: cfg.HTTP.ReadTimeout, IdleTimeout: cfg.HTTP.IdleTimeout,
		// Answers are small; a client that does not read them is let go.
		WriteTimeout: cfg.HTTP.ReadTimeout + 30*time.Second}
	return c, nil
}

// loopback reports whether a listen address only takes local connections.
// NewElasticsearch returns the Elasticsearch output of cfg, with the
// traces index's template for Setup to install when traces are on.
func NewElasticsearch(cfg *Config, log *slog.Logger) (*elasticsearch.Output, error) {
	o, err := elasticsearch.New(cfg.Elasticsearch, log)
	if err != nil {
		return nil, err
	}
	if ti := cfg.Correlation.TracesIndex; ti != "" {
		o.Templates = append(o.Templates, elasticsearch.Template{Name: correlate.TemplateName, Pattern: ti, Mappings: correlate.Mappings()})
	}
	return o, nil
}

func loopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// requireToken answers 401 to a request without the bearer token.
func requireToken(token string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !ingest.Authorized(r, token) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="logweave"`)
			http.Error(w, "missing or wrong bearer token", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Gatherer is what /metrics serves: the process's metrics and the
// collector's own (its buffer).
func (c *Collector) Gatherer() prometheus.Gatherer { return c.gatherer }

// Addr is the bound HTTP address (useful with port 0).
func (c *Collector) Addr() string { return c.ln.Addr().String() }

// ForwardAddr is where the Forward protocol is received ("" when off).
func (c *Collector) ForwardAddr() string {
	if c.forward == nil {
		return ""
	}
	return c.forward.Addr()
}

// SyslogAddr is where syslog is received, UDP and TCP ("" when off).
func (c *Collector) SyslogAddr() string {
	if c.syslog == nil {
		return ""
	}
	return c.syslog.Addr()
}

// BeatsAddr is where Lumberjack v2 is received ("" when off).
func (c *Collector) BeatsAddr() string {
	if c.beats == nil {
		return ""
	}
	return c.beats.Addr()
}

// OTLP serves OpenTelemetry logs (nil when off): HTTPAddr, GRPCAddr.
func (c *Collector) OTLP() *otlp.Server { return c.otlp }

// GELFAddr is where GELF is received ("" when off).
func (c *Collector) GELFAddr() string {
	if c.gelf == nil {
		return ""
	}
	return c.gelf.Addr()
}

// Indexed is how many records the indexer delivered since start.
func (c *Collector) Indexed() int64 { return c.indexed.Load() }

// Start serves HTTP and starts the indexer.
func (c *Collector) Start() {
	readCtx, stopRead := context.WithCancel(context.Background())
	outCtx, stopOut := context.WithCancel(context.Background())
	c.stopRead, c.stopOut = stopRead, stopOut
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		if err := c.srv.Serve(c.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			c.log.Error("http server", "error", err)
		}
	}()
	if c.src != nil {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.index(readCtx, outCtx)
		}()
	}
	c.log.Info("collector started", "listen", c.Addr(), "role", c.role)
}

// index moves batches from the source to the output, committing each batch
// only after the output accepted all of it. What was delivered feeds the
// correlator; traces quiet for the window are written to the traces index.
func (c *Collector) index(readCtx, outCtx context.Context) {
	var tr *correlate.Writer
	if cc := c.cfg.Correlation; cc.TracesIndex != "" {
		tr, _ = correlate.NewWriter(correlate.WriterConfig{Index: cc.TracesIndex,
			Config: correlate.Config{Window: cc.Window, MaxOpenTraces: cc.MaxOpenTraces, MaxBytes: int64(cc.MaxMemory)}}, c.out, c.log) // validated
		defer tr.Flush(outCtx)
	}
	for {
		ctx, cancel := readCtx, context.CancelFunc(func() {})
		if next := tr.NextExpiry(); !next.IsZero() {
			ctx, cancel = context.WithDeadline(readCtx, next)
		}
		recs, commit, err := c.src.Next(ctx, c.cfg.Indexer.BatchSize, int(c.cfg.Indexer.BatchBytes))
		cancel()
		if err != nil {
			if readCtx.Err() != nil || errors.Is(err, buffer.ErrClosed) {
				return // shutting down
			}
			if errors.Is(err, context.DeadlineExceeded) {
				tr.Expire(outCtx, time.Now()) // quiet: write what is complete
				continue
			}
			c.log.Warn("indexer: reading the buffer failed; retrying", "error", err)
			select {
			case <-readCtx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		}
		if !c.deliver(outCtx, recs) {
			c.log.Warn("indexer stopped before the batch was delivered; it stays buffered", "events", len(recs))
			return
		}
		// A broker that never answers must not hold the indexer: the
		// commit is tried again with the next batch's (offsets are
		// cumulative), and meanwhile the batch may be read again.
		cctx, cancelCommit := context.WithTimeout(outCtx, commitTimeout)
		err = commit(cctx)
		cancelCommit()
		if err != nil {
			// Delivered but not committed: it is read and indexed again,
			// and overwrites itself by id. Its events count in traces
			// when that happens (counting them now too would count twice).
			c.log.Warn("indexer: commit failed; the batch will be delivered again", "error", err)
		} else {
			tr.Add(outCtx, recs, time.Now())
		}
		c.indexed.Add(int64(len(recs)))
	}
}

// commitTimeout bounds one commit of the buffer position (a Kafka offset
// commit to a broker that hangs).
const commitTimeout = 30 * time.Second

// deliver writes one batch to the output, trying again with backoff while
// the output fails (a full disk, no file descriptor, anything Write
// reports): an output error never stops the indexer, the batch stays
// buffered meanwhile, and /readyz, the log and
// logweave_indexer_output_failures_total say why. It reports false only
// when ctx ends first.
func (c *Collector) deliver(ctx context.Context, recs []pipeline.Record) bool {
	backoff := 100 * time.Millisecond
	for {
		err := c.out.Write(ctx, recs)
		if err == nil {
			outputEvents.WithLabelValues(c.outName).Add(float64(len(recs)))
			if c.outErr.Swap(nil) != nil {
				c.log.Info("indexer: output recovered")
			}
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		outputFailures.Inc()
		c.outErr.Store(&err)
		c.log.Error("indexer: output failed; the batch stays buffered and is tried again", "events", len(recs), "retry_in", backoff.String(), "error", err)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(jitter.Equal(backoff)):
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

func (c *Collector) readyz(w http.ResponseWriter, _ *http.Request) {
	if c.buf != nil {
		st := c.buf.Stats()
		if st.DiskFull != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "not ready: buffer disk full (%v); ingest answers 429 until delivered events free space\n", st.DiskFull)
			return
		}
		if st.Bytes >= st.MaxBytes*9/10 {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "not ready: buffer %d of %d bytes full\n", st.Bytes, st.MaxBytes)
			return
		}
	}
	if e := c.outErr.Load(); e != nil {
		// As with the breaker below: an ingesting collector keeps taking
		// events into its buffer while the output fails.
		if c.sink == nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "not ready: output failing: %v\n", *e)
			return
		}
		fmt.Fprintf(w, "ready (output failing: %v; events wait in the buffer)\n", *e)
		return
	}
	if c.es != nil {
		if open, why := c.es.BreakerOpen(); open {
			// An ingesting collector still takes events while Elasticsearch
			// is away (they wait in the buffer or Kafka): taking it out of
			// a load balancer would only push the backlog onto the
			// shippers. An indexer has nothing else to do.
			if c.sink == nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprintf(w, "not ready: elasticsearch circuit breaker open: %s\n", why)
				return
			}
			fmt.Fprintf(w, "ready (elasticsearch circuit breaker open: %s; events wait in the buffer)\n", why)
			return
		}
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
	if cerr := c.closeAll(); err == nil {
		err = cerr
	}
	c.log.Info("collector stopped", "indexed", c.Indexed())
	return err
}

func (c *Collector) closeAll() error {
	var first error
	for i := len(c.closers) - 1; i >= 0; i-- {
		if err := c.closers[i](); err != nil && first == nil {
			first = err
		}
	}
	c.closers = nil
	if c.ln != nil && c.stopRead == nil {
		c.ln.Close()
	}
	return first
}

// countingSink counts what its sink took.
type countingSink struct {
	pipeline.Sink
	n prometheus.Counter
}

func (s countingSink) Write(ctx context.Context, recs []pipeline.Record) error {
	err := s.Sink.Write(ctx, recs)
	if err == nil {
		s.n.Add(float64(len(recs)))
	}
	return err
}

// bufferSink makes ingest batches durable in the disk buffer.
type bufferSink struct{ b *buffer.Buffer }

// frames are ingest batches being framed for the buffer, reused: a fresh
// arena per batch, copied again to be framed, was a third of what the
// collector allocated.
var frames = sync.Pool{New: func() any { return new(buffer.Frames) }}

func (s bufferSink) Write(_ context.Context, recs []pipeline.Record) error {
	f := frames.Get().(*buffer.Frames)
	defer func() {
		if f.Len() <= 8<<20 {
			f.Reset()
			frames.Put(f)
		}
	}()
	for i := range recs {
		f.Close(recs[i].AppendBinary(f.Open()))
	}
	err := s.b.AppendFrames(f)
	if errors.Is(err, buffer.ErrFull) {
		return fmt.Errorf("%w: %w", pipeline.ErrFull, err)
	}
	if errors.Is(err, buffer.ErrTooLarge) {
		return fmt.Errorf("%w: %w", pipeline.ErrTooLarge, err)
	}
	return err
}

// bufferSource reads the disk buffer for the indexer, into storage reused
// from batch to batch: the records of one batch are valid until the next.
type bufferSource struct {
	r    *buffer.Reader
	recs []pipeline.Record
}

func (s *bufferSource) Next(ctx context.Context, max, maxBytes int) ([]pipeline.Record, func(context.Context) error, error) {
	raws, pos, err := s.r.Read(ctx, max, maxBytes)
	if err != nil {
		return nil, nil, err
	}
	recs := s.recs[:0]
	var r pipeline.Record
	for _, raw := range raws {
		// r.Index stays from the record before: decoding shares the string when equal.
		if err := r.UnmarshalBinary(raw); err != nil {
			// Framed and checksummed but not decodable: a bug, not a
			// disk fault. Say so; do not block the buffer on it.
			slog.Error("buffer: undecodable record skipped", "error", err)
			continue
		}
		recs = append(recs, r)
	}
	s.recs = recs
	return recs, func(context.Context) error { return s.r.Commit(pos) }, nil
}
