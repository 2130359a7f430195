// Package collector is the shipper's transport: it sends batches of
// envelopes, compressed, over HTTP keep-alive to the collector, retries
// until the collector answers 200 (honouring 429 Retry-After, backing off
// exponentially with jitter, failing over between URLs), and only then
// acknowledges the batch to its source.
//
// Batches go in the binary framing (pipeline.FrameWriter: each line's bytes
// as read, not escaped into JSON) to /v2/events. A collector of a version
// before it answers 404 there: that collector is then sent NDJSON
// envelopes on /v1/events, which every version takes, until it is next
// unreachable (an upgrade restarts it), when the framing is tried again.
package collector

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/logweave/logweave/internal/fsutil"
	"github.com/logweave/logweave/internal/jitter"
	"github.com/logweave/logweave/pipeline"
)

// Config is the shipper's `collector:` section.
type Config struct {
	URLs        []string          `yaml:"urls"`
	MaxEvents   int               `yaml:"batch_max_events"`
	MaxBytes    pipeline.ByteSize `yaml:"batch_max_bytes"`
	Linger      time.Duration     `yaml:"linger"`
	Timeout     time.Duration     `yaml:"timeout"`
	Compression Codec             `yaml:"compression"`
	RetryMax    time.Duration     `yaml:"retry_max"`
	Parallel    int               `yaml:"parallel"`
	// A collector that failed BreakerFailures times in a row is not tried
	// for BreakerCooldown while another one is available.
	BreakerFailures int           `yaml:"breaker_failures"`
	BreakerCooldown time.Duration `yaml:"breaker_cooldown"`
	// Token is sent as "Authorization: Bearer <token>" (the collector's http.token).
	Token string    `yaml:"token"`
	TLS   ClientTLS `yaml:"tls"`
}

// ClientTLS configures https:// collector URLs: a private CA, and a client
// certificate for collectors that require one (mTLS).
type ClientTLS struct {
	CACert             string `yaml:"ca_cert"`
	Cert               string `yaml:"cert"`
	Key                string `yaml:"key"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		URLs:            []string{"http://127.0.0.1:8080"},
		MaxEvents:       1000,
		MaxBytes:        1 << 20,
		Linger:          200 * time.Millisecond,
		Timeout:         30 * time.Second,
		Compression:     CodecS2,
		RetryMax:        30 * time.Second,
		Parallel:        2,
		BreakerFailures: 3,
		BreakerCooldown: 10 * time.Second,
	}
}

// Validate checks the section.
func (c *Config) Validate(prefix string) error {
	if len(c.URLs) == 0 {
		return fmt.Errorf("%s.urls: list at least one collector URL", prefix)
	}
	if err := pipeline.ValidateURLs(prefix+".urls", c.URLs); err != nil {
		return err
	}
	if c.MaxEvents < 1 {
		return fmt.Errorf("%s.batch_max_events: must be at least 1", prefix)
	}
	if c.MaxBytes < 1024 {
		return fmt.Errorf("%s.batch_max_bytes: must be at least 1KiB", prefix)
	}
	if (c.TLS.Cert == "") != (c.TLS.Key == "") {
		return fmt.Errorf("%s.tls: cert and key go together", prefix)
	}
	if c.BreakerFailures < 1 || c.BreakerCooldown <= 0 {
		return fmt.Errorf("%s.breaker_failures/breaker_cooldown: must be positive", prefix)
	}
	if c.Parallel < 1 || c.Parallel > 64 {
		return fmt.Errorf("%s.parallel: must be between 1 and 64", prefix)
	}
	if c.Linger <= 0 || c.Timeout <= 0 || c.RetryMax <= 0 {
		return fmt.Errorf("%s: linger, timeout and retry_max must be positive", prefix)
	}
	return nil
}

var (
	batchesSent = promauto.NewCounter(prometheus.CounterOpts{
		Name: "logweave_shipper_batches_sent_total", Help: "Batches the collector acknowledged."})
	eventsSent = promauto.NewCounter(prometheus.CounterOpts{
		Name: "logweave_shipper_events_sent_total", Help: "Events the collector acknowledged."})
	breakerOpened = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "logweave_shipper_breaker_opened_total", Help: "Times a collector's circuit breaker opened, by URL."}, []string{"url"})
	sendErrors = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "logweave_shipper_send_errors_total", Help: "Failed batch sends by reason (status code or 'network')."}, []string{"reason"})
)

// Item is one event to send, with whatever its source needs at ack time.
type Item struct {
	Envelope pipeline.Envelope
	Ack      any
}

// Sender batches items and delivers them.
type Sender struct {
	cfg       Config
	log       *slog.Logger
	client    *http.Client
	mu        sync.Mutex
	cur       int         // the collector in use
	failures  []int       // consecutive failures per collector
	failing   []int       // the same, not reset when the breaker opens
	openUntil []time.Time // per collector: breaker open until then
	ndjson    []bool      // per collector: it does not take the binary framing
}

// NewSender returns a sender.
func NewSender(cfg Config, log *slog.Logger) (*Sender, error) {
	if log == nil {
		log = slog.Default()
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 4
	tr.DisableCompression = true
	tc := &tls.Config{InsecureSkipVerify: cfg.TLS.InsecureSkipVerify, MinVersion: tls.VersionTLS12}
	if cfg.TLS.CACert != "" {
		pool, err := fsutil.CertPool(cfg.TLS.CACert)
		if err != nil {
			return nil, fmt.Errorf("collector.tls.ca_cert: %w", err)
		}
		tc.RootCAs = pool
	}
	if cfg.TLS.Cert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLS.Cert, cfg.TLS.Key)
		if err != nil {
			return nil, fmt.Errorf("collector.tls.cert/key: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	tr.TLSClientConfig = tc
	return &Sender{cfg: cfg, log: log, client: &http.Client{Transport: tr, Timeout: cfg.Timeout},
		failures: make([]int, len(cfg.URLs)), failing: make([]int, len(cfg.URLs)), openUntil: make([]time.Time, len(cfg.URLs)), ndjson: make([]bool, len(cfg.URLs))}, nil
}

// Run reads items from in, sends them in batches (by count, bytes, or after
// Linger), up to Parallel batches at a time, and calls ack with each batch
// once the collector acknowledged it — always in the order the batches were
// made, so a source may treat an ack as "everything before is delivered".
// ack must not keep the slice: it is reused for a later batch.
// When ctx ends, sends in flight may finish and what is held is delivered,
// for up to flushTimeout; after a batch that could not be delivered, no
// later batch is acknowledged (its lines are read again after a restart).
func (s *Sender) Run(ctx context.Context, in <-chan Item, ack func([]Item), flushTimeout time.Duration) {
	sendCtx, cancelSend := context.WithCancel(context.Background())
	defer cancelSend()
	go func() {
		select {
		case <-ctx.Done():
		case <-sendCtx.Done():
			return
		}
		select {
		case <-time.After(flushTimeout):
			cancelSend()
		case <-sendCtx.Done():
		}
	}()

	type flight struct {
		items []Item
		done  chan struct{}
		err   error
	}
	slots := make(chan struct{}, s.cfg.Parallel)
	flights := make(chan *flight, s.cfg.Parallel)
	ackerDone := make(chan struct{})
	go func() { // acknowledge in order
		defer close(ackerDone)
		failed := false
		for f := range flights {
			<-f.done
			if f.err != nil && !failed {
				failed = true
				s.log.Warn("shipper: batch not delivered before stopping; it is read again after restart", "events", len(f.items))
			}
			if !failed {
				ack(f.items)
			}
			clear(f.items) // let go of the lines
			batches.Put(f.items[:0])
			<-slots
		}
	}()
	defer func() {
		close(flights)
		<-ackerDone
	}()

	var batch []Item
	var body []byte
	var frames pipeline.FrameWriter
	framed := false
	var timer <-chan time.Time
	flush := func() bool {
		if len(batch) == 0 {
			return true
		}
		select {
		case slots <- struct{}{}:
		case <-sendCtx.Done():
			return false
		}
		f := &flight{items: batch, done: make(chan struct{})}
		payload, wasFramed := body, framed
		go func() {
			f.err = s.send(sendCtx, f.items, payload, wasFramed)
			close(f.done)
		}()
		flights <- f
		batch, body, timer = nil, nil, nil
		return true
	}
	// add puts an item in the batch, and sends the batch when it is full;
	// false when sending stopped.
	add := func(it Item) bool {
		if body == nil {
			body = bodies.Get().([]byte)
			batch = batches.Get().([]Item)
			framed = s.takesFrames()
			frames.Reset()
		}
		if framed {
			body = frames.Append(body, &it.Envelope)
		} else {
			body = it.Envelope.AppendJSON(body)
			body = append(body, '\n')
		}
		batch = append(batch, it)
		if len(batch) == 1 {
			timer = time.After(s.cfg.Linger)
		}
		if len(batch) >= s.cfg.MaxEvents || len(body) >= int(s.cfg.MaxBytes) {
			return flush()
		}
		return true
	}
	for {
		select {
		case it := <-in:
			if !add(it) {
				return
			}
			// Take what is already waiting without a full select per
			// item (a select on three channels per line was a tenth of
			// the shipper's CPU).
		drain:
			for range s.cfg.MaxEvents {
				select {
				case it := <-in:
					if !add(it) {
						return
					}
				default:
					break drain
				}
			}
		case <-timer:
			if !flush() {
				return
			}
		case <-ctx.Done():
			flush()
			return
		}
	}
}

// batches are the items of a batch, reused once acknowledged.
var batches = sync.Pool{New: func() any { return make([]Item, 0, 1000) }}

// bodies are batch bodies, reused: growing a fresh one line by line to a
// MiB was a tenth of the shipper's CPU. They start at 256 KiB (a default
// batch, 1000 lines of a few hundred bytes, is ~400 KiB) and keep what
// they grew to: starting each at batch_max_bytes held ~2 MiB for nothing.
var bodies = sync.Pool{New: func() any { return make([]byte, 0, 256<<10) }}

// scratches take a batch as it is compressed; payloads the compressed
// batch, reused once no request reads it.
var scratches, payloads = sync.Pool{New: func() any { return []byte(nil) }}, sync.Pool{New: func() any { return []byte(nil) }}

// closingReader is a request body that says when the transport closed it
// (it closes every request's body, also on errors), so that its storage
// can be reused.
type closingReader struct {
	*bytes.Reader
	once sync.Once
	done func()
}

func (r *closingReader) Close() error {
	r.once.Do(r.done)
	return nil
}

// send delivers one batch (body: the items encoded, framed or NDJSON),
// retrying until success or ctx ends.
func (s *Sender) send(ctx context.Context, items []Item, body []byte, framed bool) error {
	events := len(items)
	codec := s.cfg.Compression
	if !framed {
		codec = codec.legacy() // NDJSON goes to collectors of any version
	}
	// The body is compressed into scratch storage (room for the worst
	// case, ~1.2x the body), then copied into storage of its size (about
	// a fifth), which is reused once every request that read it is closed
	// (the transport may still be writing a body after the answer came).
	// A fresh worst-case buffer per batch was the shipper's largest
	// allocation; pooling those instead held ~2 MiB more.
	var reading sync.WaitGroup
	payload := body
	compressed := codec.contentEncoding() != ""
	if compressed {
		scratch := scratches.Get().([]byte)
		enc := codec.encode(scratch, body)
		payload = append(payloads.Get().([]byte)[:0], enc...)
		scratches.Put(enc[:0]) // in scratch's storage, or in larger storage the codec made
		bodies.Put(body[:0])   // the requests read the copy: the body takes the next batch
	}
	defer func() {
		go func(p []byte) {
			reading.Wait()
			if compressed {
				payloads.Put(p[:0])
			} else {
				bodies.Put(p[:0]) // the requests read the body itself
			}
		}(payload)
	}()
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		idx, closedIn := s.pick()
		if closedIn > 0 { // every collector's breaker is open
			if err := sleepCtx(ctx, closedIn); err != nil {
				return err
			}
		}
		if framed && !s.takesFramesAt(idx) {
			// This collector is of a version before the framing.
			nd := body[:0:0]
			for i := range items {
				nd = append(items[i].Envelope.AppendJSON(nd), '\n')
			}
			codec, framed = s.cfg.Compression.legacy(), false
			payload = codec.encode(nil, nd)
		}
		path := "/v1/events"
		if framed {
			path = "/v2/events"
		}
		url := strings.TrimRight(s.cfg.URLs[idx], "/") + path
		reading.Add(1)
		wait, err := s.post(ctx, url, &closingReader{Reader: bytes.NewReader(payload), done: reading.Done}, len(payload), framed, codec)
		if errors.Is(err, errNoFrames) {
			s.log.Info("shipper: this collector does not take the binary framing (a version before it); sending it NDJSON", "url", pipeline.RedactURL(s.cfg.URLs[idx]))
			s.setNDJSON(idx, true)
			attempt--
			continue
		}
		if errors.Is(err, errUnreachable) {
			s.setNDJSON(idx, false) // when it is back it may be of another version
		}
		if err == nil {
			s.report(idx, true)
			batchesSent.Inc()
			eventsSent.Add(float64(events))
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if wait == 0 {
			// Not a 429: count it against this collector and move on to
			// the next; back off once every collector failed in turn.
			s.report(idx, false)
			if attempt%len(s.cfg.URLs) == 0 {
				wait = jitter.Equal(backoff)
				backoff = min(backoff*2, s.cfg.RetryMax)
			}
		}
		if attempt%10 == 1 {
			s.log.Warn("shipper: batch not accepted, retrying", "url", pipeline.RedactURL(url), "error", err, "retry_in", wait.String(), "attempt", attempt)
		}
		if err := sleepCtx(ctx, wait); err != nil {
			return err
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// pick chooses the collector to try: the current one, or the next whose
// circuit breaker is closed (or due for its probe). When all are open it
// returns the one that closes first and how long until then.
func (s *Sender) pick() (int, time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	n := len(s.cfg.URLs)
	best := -1
	for k := 0; k < n; k++ {
		i := (s.cur + k) % n
		if !now.Before(s.openUntil[i]) {
			s.cur = i
			return i, 0
		}
		if best < 0 || s.openUntil[i].Before(s.openUntil[best]) {
			best = i
		}
	}
	s.cur = best
	return best, s.openUntil[best].Sub(now)
}

// report records an attempt's outcome for collector i's circuit breaker:
// breaker_failures failures in a row open it for breaker_cooldown, during
// which it is not tried while another collector is available.
func (s *Sender) report(i int, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ok {
		if s.failing[i] > 0 {
			s.log.Info("shipper: collector accepts batches again", "url", pipeline.RedactURL(s.cfg.URLs[i]), "after_failures", s.failing[i])
		}
		s.failures[i], s.failing[i] = 0, 0
		return
	}
	s.failing[i]++
	s.failures[i]++
	if s.failures[i] >= s.cfg.BreakerFailures {
		s.failures[i] = 0
		s.openUntil[i] = time.Now().Add(s.cfg.BreakerCooldown)
		breakerOpened.WithLabelValues(pipeline.RedactURL(s.cfg.URLs[i])).Inc()
		s.log.Warn("shipper: collector circuit breaker open", "url", pipeline.RedactURL(s.cfg.URLs[i]), "cooldown", s.cfg.BreakerCooldown.String())
	}
	s.cur = (i + 1) % len(s.cfg.URLs)
}

// errNoFrames: the collector (or a proxy) answered 404, 405, 415 or 501 to
// the binary framing.
var errNoFrames = errors.New("collector does not take the binary framing")

// errUnreachable: no answer from the collector.
var errUnreachable = errors.New("collector unreachable")

// takesFrames reports whether the collector in use takes the framing (as
// far as known: until it says otherwise).
func (s *Sender) takesFrames() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.ndjson[s.cur]
}

func (s *Sender) takesFramesAt(i int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.ndjson[i]
}

func (s *Sender) setNDJSON(i int, v bool) {
	s.mu.Lock()
	s.ndjson[i] = v
	s.mu.Unlock()
}

// post sends once. For a 429 it returns the wait the collector asked for.
func (s *Sender) post(ctx context.Context, url string, payload *closingReader, n int, framed bool, codec Codec) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, payload)
	if err != nil {
		payload.Close()
		return 0, err
	}
	req.ContentLength = int64(n)
	if framed {
		req.Header.Set("Content-Type", pipeline.FramesContentType)
	} else {
		req.Header.Set("Content-Type", "application/x-ndjson")
	}
	if s.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+s.cfg.Token)
	}
	if ce := codec.contentEncoding(); ce != "" {
		req.Header.Set("Content-Encoding", ce)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		sendErrors.WithLabelValues("network").Inc()
		return 0, fmt.Errorf("%w: %w", errUnreachable, err)
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return 0, nil
	}
	switch {
	case !framed:
	case resp.StatusCode == http.StatusNotFound, resp.StatusCode == http.StatusMethodNotAllowed,
		resp.StatusCode == http.StatusUnsupportedMediaType, resp.StatusCode == http.StatusNotImplemented:
		// A collector before the framing, or a proxy in front that
		// routes only /v1/events.
		return 0, errNoFrames
	}
	sendErrors.WithLabelValues(strconv.Itoa(resp.StatusCode)).Inc()
	err = fmt.Errorf("collector answered %s: %s", resp.Status, bytes.TrimSpace(msg))
	if resp.StatusCode == http.StatusTooManyRequests {
		wait := time.Second
		if secs, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil && secs >= 0 {
			wait = time.Duration(secs) * time.Second
		}
		return max(wait, 50*time.Millisecond), err
	}
	if resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusRequestTimeout {
		// The collector will never take this batch as it is (e.g. 413):
		// keep retrying would block forever, so say it loudly; the
		// operator must raise http.max_body_bytes or lower batch sizes.
		return 0, errors.Join(err, errors.New("permanent rejection; check collector limits"))
	}
	return 0, err
}
