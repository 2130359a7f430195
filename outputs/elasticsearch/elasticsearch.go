// Package elasticsearch is the collector's Elasticsearch output: it bulk-
// indexes records into their daily indices through go-elasticsearch's
// client (bulk bodies written here, answers read item by item), retries what is retryable (429, 5xx, network) with
// exponential backoff and jitter, and sends what Elasticsearch rejects for
// good (mapping conflicts, parse errors) to a dead-letter index with the
// reason. Write returns only when every record is indexed or dead-lettered,
// so the caller may then commit its buffer position.
package elasticsearch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sort"
	"strconv"
	"sync"
	"time"

	es "github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"
	kgzip "github.com/klauspost/compress/gzip"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/tidwall/gjson"

	"github.com/logweave/logweave/internal/jitter"
	"github.com/logweave/logweave/pipeline"
)

// Config is the collector's `elasticsearch:` section.
type Config struct {
	URLs            []string          `yaml:"urls"`
	Username        string            `yaml:"username"`
	Password        string            `yaml:"password"`
	APIKey          string            `yaml:"api_key"`
	CACert          string            `yaml:"ca_cert"`
	Index           string            `yaml:"index"`
	TracesIndex     string            `yaml:"traces_index"`
	DeadLetterIndex string            `yaml:"dead_letter_index"`
	Workers         int               `yaml:"workers"`
	FlushBytes      pipeline.ByteSize `yaml:"flush_bytes"`
	Compression     bool              `yaml:"compression"`
	// CompressionLevel is gzip's level for bulk bodies, 1 (fastest, the
	// default, as Filebeat's compression_level) to 9. At gzip's default
	// level 6, compressing was 41% of the collector's CPU.
	CompressionLevel int           `yaml:"compression_level"`
	RetryInitial     time.Duration `yaml:"retry_initial"`
	RetryMax         time.Duration `yaml:"retry_max"`
	BreakerFailures  int           `yaml:"breaker_failures"`
	BreakerCooldown  time.Duration `yaml:"breaker_cooldown"`
	Shards           int           `yaml:"shards"`
	Replicas         int           `yaml:"replicas"`
	TotalFieldsLimit int           `yaml:"total_fields_limit"`
	RetentionDays    int           `yaml:"retention_days"`
	RequestTimeout   time.Duration `yaml:"request_timeout"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Index:            "logs-%{+yyyy.MM.dd}",
		TracesIndex:      "traces-%{+yyyy.MM.dd}",
		DeadLetterIndex:  "logweave-deadletter-%{+yyyy.MM.dd}",
		Workers:          2,
		FlushBytes:       5 << 20,
		Compression:      true,
		CompressionLevel: kgzip.BestSpeed,
		RetryInitial:     200 * time.Millisecond,
		RetryMax:         30 * time.Second,
		BreakerFailures:  5,
		BreakerCooldown:  10 * time.Second,
		Shards:           1,
		Replicas:         1,
		TotalFieldsLimit: 2000,
		RequestTimeout:   60 * time.Second,
	}
}

// Validate checks the section; prefix is its key path for messages.
func (c *Config) Validate(prefix string) error {
	for _, p := range []struct{ key, val string }{{"index", c.Index}, {"traces_index", c.TracesIndex}, {"dead_letter_index", c.DeadLetterIndex}} {
		if _, err := pipeline.ParseIndexPattern(p.val); err != nil {
			return fmt.Errorf("%s.%s: %w", prefix, p.key, err)
		}
	}
	if err := pipeline.ValidateURLs(prefix+".urls", c.URLs); err != nil {
		return err
	}
	if c.Compression && (c.CompressionLevel < kgzip.BestSpeed || c.CompressionLevel > kgzip.BestCompression) {
		return fmt.Errorf("%s.compression_level: %d is not 1 to 9", prefix, c.CompressionLevel)
	}
	if c.Workers < 1 {
		return fmt.Errorf("%s.workers: must be at least 1", prefix)
	}
	if c.FlushBytes < 4096 {
		return fmt.Errorf("%s.flush_bytes: must be at least 4KiB", prefix)
	}
	if c.APIKey != "" && c.Username != "" {
		return fmt.Errorf("%s: set api_key or username/password, not both", prefix)
	}
	if c.BreakerFailures < 1 || c.BreakerCooldown <= 0 {
		return fmt.Errorf("%s.breaker_failures/breaker_cooldown: must be positive", prefix)
	}
	if c.Shards < 1 || c.Replicas < 0 || c.TotalFieldsLimit < 100 || c.RetentionDays < 0 {
		return fmt.Errorf("%s: shards >= 1, replicas >= 0, total_fields_limit >= 100, retention_days >= 0", prefix)
	}
	if c.RequestTimeout <= 0 {
		return fmt.Errorf("%s.request_timeout: must be positive", prefix)
	}
	if c.RetryInitial <= 0 || c.RetryMax < c.RetryInitial {
		return fmt.Errorf("%s.retry_initial/retry_max: need 0 < retry_initial <= retry_max", prefix)
	}
	return nil
}

var (
	indexed = promauto.NewCounter(prometheus.CounterOpts{
		Name: "logweave_elasticsearch_indexed_total", Help: "Documents Elasticsearch accepted."})
	retried = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "logweave_elasticsearch_retried_total", Help: "Bulk items retried, by HTTP status (0: request failed)."}, []string{"status"})
	deadLettered = promauto.NewCounter(prometheus.CounterOpts{
		Name: "logweave_elasticsearch_dead_lettered_total", Help: "Documents rejected by Elasticsearch and written to the dead-letter index."})
	deadLetterFailed = promauto.NewCounter(prometheus.CounterOpts{
		Name: "logweave_elasticsearch_dead_letter_failed_total", Help: "Dead-letter writes Elasticsearch refused too; the event stays buffered and is tried again."})
	badRequests = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "logweave_elasticsearch_bulk_refused_total", Help: "Whole bulk requests refused, by HTTP status (401/403 credentials, 413 too large, 400 bad content)."}, []string{"status"})
	bulkSeconds = promauto.NewHistogram(prometheus.HistogramOpts{
		Name: "logweave_elasticsearch_bulk_duration_seconds", Help: "Time to index one batch, retries included.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)})
)

// Output writes records to Elasticsearch.
type Output struct {
	// Templates are installed by Setup beside the output's own.
	Templates []Template

	cfg     Config
	client  *es.Client
	dlq     *pipeline.IndexPattern
	log     *slog.Logger
	breaker *breaker
}

// New creates the client. It does not contact the cluster.
func New(cfg Config, log *slog.Logger) (*Output, error) {
	if log == nil {
		log = slog.Default()
	}
	esCfg := es.Config{
		Addresses: cfg.URLs,
		Username:  cfg.Username,
		Password:  cfg.Password,
		APIKey:    cfg.APIKey,
		// Bulk bodies are gzipped here (sendOnce), with klauspost's gzip
		// at compression_level: the transport's own compression (the
		// standard library's, level 6) was 41% of the collector's CPU.
		RetryOnStatus: []int{http.StatusTooManyRequests, 502, 503, 504},
		MaxRetries:    2,
		RetryBackoff:  func(i int) time.Duration { return time.Duration(i) * 100 * time.Millisecond },
	}
	var caPEM []byte
	if cfg.CACert != "" {
		pem, err := os.ReadFile(cfg.CACert)
		if err != nil {
			return nil, fmt.Errorf("elasticsearch.ca_cert: %w", err)
		}
		caPEM = pem
	}
	tr, err := newTransport(caPEM)
	if err != nil {
		return nil, err
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultConfig().RequestTimeout
	}
	// Every request, whoever makes it (bulk, set-up, trace reads, pings),
	// ends after request_timeout: a cluster that never answers is a
	// failure, not a stall.
	esCfg.Transport = &timeoutTransport{base: tr, timeout: cfg.RequestTimeout}
	// A request that timed out is not tried again at once by the client:
	// the indexer's backoff and breaker handle it, so a hung cluster
	// shows within breaker_failures x request_timeout.
	esCfg.RetryOnError = func(_ *http.Request, err error) bool { return !errors.As(err, new(errRequestTimeout)) }
	client, err := es.NewClient(esCfg)
	if err != nil {
		return nil, err
	}
	dlq, err := pipeline.ParseIndexPattern(cfg.DeadLetterIndex)
	if err != nil {
		return nil, err
	}
	return &Output{cfg: cfg, client: client, dlq: dlq, log: log,
		breaker: &breaker{threshold: cfg.BreakerFailures, cooldown: cfg.BreakerCooldown}}, nil
}

// Client returns the underlying client (for set-up and queries).
func (o *Output) Client() *es.Client { return o.client }

type failure struct {
	rec    pipeline.Record
	status int
	typ    string
	reason string
}

// Write indexes recs. It returns nil once every record was accepted or
// dead-lettered, and an error only when ctx ends first; records are retried
// (with backoff) until then, so nothing is dropped silently: a dead letter
// that cannot be written either keeps its event here, tried again, until the
// cluster takes it. Conditional records whose condition fails are neither
// retried nor dead-lettered: Write returns them in a *pipeline.ConflictError.
func (o *Output) Write(ctx context.Context, recs []pipeline.Record) error {
	start := time.Now()
	defer func() { bulkSeconds.Observe(time.Since(start).Seconds()) }()
	pending := recs
	isDLQ := map[string]bool{} // id+index of dead-letter records in pending
	backoff := o.cfg.RetryInitial
	var conflicts []pipeline.Record
	for len(pending) > 0 {
		if err := o.breaker.wait(ctx); err != nil {
			return err
		}
		res, err := o.bulk(ctx, pending)
		if err != nil {
			return err
		}
		conflicts = append(conflicts, res.conflicts...)
		retry := res.retry
		// Progress: the cluster took or judged something. An attempt
		// without it (network, timeout, 5xx, 401, all 429, dead letters
		// refused) counts against the breaker.
		progress := res.ok > 0 || len(res.conflicts) > 0
		failed := len(res.retry) > 0
		reason := res.reason
		for _, f := range res.rejected {
			if isDLQ[f.rec.ID+"\x00"+f.rec.Index] {
				deadLetterFailed.Inc()
				failed = true
				reason = fmt.Sprintf("dead-letter write refused (%d %s: %s); the event stays buffered", f.status, f.typ, f.reason)
				o.log.Error("elasticsearch: dead-letter document rejected too; the event stays buffered and is tried again", "id", f.rec.ID, "index", f.rec.Index, "status", f.status, "error.type", f.typ, "error.message", f.reason)
				retry = append(retry, f.rec)
				continue
			}
			progress = true
			deadLettered.Inc()
			o.log.Warn("document rejected, sent to dead-letter index", "id", f.rec.ID, "index", f.rec.Index, "status", f.status, "error.type", f.typ, "error.message", f.reason)
			d := o.deadLetter(f)
			isDLQ[d.ID+"\x00"+d.Index] = true
			retry = append(retry, d)
		}
		if o.breaker.result(progress, reason) {
			o.log.Error("elasticsearch: circuit breaker open; indexing paused", "cooldown", o.cfg.BreakerCooldown.String(), "reason", reason)
		}
		if failed {
			// Something failed that may succeed later: back off first
			// (fresh dead letters alone go at once).
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(jitter.Equal(backoff)):
			}
			backoff = min(backoff*2, o.cfg.RetryMax)
		}
		pending = retry
	}
	if len(conflicts) > 0 {
		return &pipeline.ConflictError{Records: conflicts}
	}
	return nil
}

// maxDeadLetterOriginal bounds event.original of a document that was
// refused for its size (413), so that its dead letter is not refused too.
const maxDeadLetterOriginal = 8 << 10

// deadLetter wraps a rejected record: the original document as a string,
// the index it was meant for, and Elasticsearch's error.
func (o *Output) deadLetter(f failure) pipeline.Record {
	now := time.Now().UTC()
	b := []byte(`{"@timestamp":"`)
	b = now.AppendFormat(b, "2006-01-02T15:04:05.000Z")
	b = append(b, `","event":{"original":`...)
	original, truncated := f.rec.Doc, false
	if f.status == http.StatusRequestEntityTooLarge {
		if limit := min(maxDeadLetterOriginal, len(original)/4); len(original) > limit {
			original, truncated = original[:limit], true
		}
	}
	b = pipeline.AppendJSONString(b, string(original))
	b = append(b, `},"error":{"type":`...)
	b = pipeline.AppendJSONString(b, f.typ)
	b = append(b, `,"message":`...)
	b = pipeline.AppendJSONString(b, f.reason)
	b = append(b, `},"logweave":{"target_index":`...)
	b = pipeline.AppendJSONString(b, f.rec.Index)
	b = append(b, `,"status":`...)
	b = fmt.Appendf(b, "%d", f.status)
	b = append(b, `,"event_id":`...)
	b = pipeline.AppendJSONString(b, f.rec.ID)
	if truncated {
		b = fmt.Appendf(b, `,"original_bytes":%d,"original_truncated":true`, len(f.rec.Doc))
	}
	b = appendValues(b, original)
	b = append(b, `}}`...)
	id := f.rec.ID
	if !pipeline.ValidID(id) {
		// The id may be why the request was refused (over 512 bytes).
		id = pipeline.EventID("", "deadletter", 0, 0, []byte(id))
	}
	return pipeline.Record{ID: id, Index: o.dlq.Format(now), Key: f.rec.Key, Doc: b}
}

// maxDeadLetterValues bounds logweave.values of a dead letter.
const maxDeadLetterValues = 256

// appendValues adds logweave.values: the original's string and number
// values, distinct, each at most 1 KiB, so that a dead letter is found by a
// value it holds (collector erase looks for a person's pseudonyms there:
// event.original is not indexed).
func appendValues(b, doc []byte) []byte {
	if !gjson.ValidBytes(doc) {
		return b
	}
	seen := map[string]bool{}
	var walk func(r gjson.Result)
	walk = func(r gjson.Result) {
		switch {
		case len(seen) >= maxDeadLetterValues:
		case r.IsObject() || r.IsArray():
			r.ForEach(func(_, v gjson.Result) bool { walk(v); return len(seen) < maxDeadLetterValues })
		case r.Type == gjson.String || r.Type == gjson.Number:
			if v := r.String(); v != "" && len(v) <= 1024 {
				seen[v] = true
			}
		}
	}
	walk(gjson.ParseBytes(doc))
	if len(seen) == 0 {
		return b
	}
	vals := make([]string, 0, len(seen))
	for v := range seen {
		vals = append(vals, v)
	}
	sort.Strings(vals) // a dead letter written again is the same document
	b = append(b, `,"values":[`...)
	for i, v := range vals {
		if i > 0 {
			b = append(b, ',')
		}
		b = pipeline.AppendJSONString(b, v)
	}
	return append(b, ']')
}

// bulk sends recs once, in requests of about flush_bytes, up to workers
// requests at a time, and sorts the outcome per record: accepted, to retry
// (429, 5xx, network, timeout, refused credentials), or rejected for good
// (other 4xx of an item, or a document a request was refused for). Its
// reason is one failure's, for the breaker and the logs.
func (o *Output) bulk(ctx context.Context, recs []pipeline.Record) (chunkResult, error) {
	var chunks [][]pipeline.Record
	start, size := 0, 0
	for i := range recs {
		size += len(recs[i].Doc) + len(recs[i].ID) + len(recs[i].Index) + 40
		if size >= int(o.cfg.FlushBytes) && i+1 > start {
			chunks = append(chunks, recs[start:i+1])
			start, size = i+1, 0
		}
	}
	if start < len(recs) {
		chunks = append(chunks, recs[start:])
	}
	results := make([]chunkResult, len(chunks))
	sem := make(chan struct{}, o.cfg.Workers)
	var wg sync.WaitGroup
	for i, chunk := range chunks {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			results[i] = o.send(ctx, chunk)
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return chunkResult{}, ctx.Err()
	}
	var all chunkResult
	for _, r := range results {
		all.merge(r)
	}
	indexed.Add(float64(all.ok))
	if len(all.retry) > 0 {
		o.log.Warn("bulk items failed, will retry", "count", len(all.retry), "of", len(recs), "reason", all.reason)
	}
	return all, nil
}

type chunkResult struct {
	ok        int
	retry     []pipeline.Record
	rejected  []failure
	conflicts []pipeline.Record // conditional writes whose condition failed
	reason    string

	// refused: the request as a whole was refused for what it carried
	// (400, 413): one of its documents, or its size, is the cause.
	refused *failure
}

func (r *chunkResult) merge(o chunkResult) {
	r.ok += o.ok
	r.retry = append(r.retry, o.retry...)
	r.rejected = append(r.rejected, o.rejected...)
	r.conflicts = append(r.conflicts, o.conflicts...)
	if o.reason != "" {
		r.reason = o.reason
	}
}

var bodyPool = sync.Pool{New: func() any { return new([]byte) }}

// gzipped is a bulk body compressed, with its writer, reused.
type gzipped struct {
	buf bytes.Buffer
	zw  *kgzip.Writer
}

var gzipPool sync.Pool

// compress gzips body at level into a pooled buffer; put it back with
// gzipPool.Put once the request is done.
func compress(body []byte, level int) *gzipped {
	g, _ := gzipPool.Get().(*gzipped)
	if g == nil {
		g = &gzipped{}
		g.zw, _ = kgzip.NewWriterLevel(&g.buf, level) // level validated
	}
	g.buf.Reset()
	g.zw.Reset(&g.buf)
	g.zw.Write(body)
	g.zw.Close()
	return g
}

// AppendBulk appends the bulk request body for recs: an index action with
// the record's index and id, then its document, each on one line.
func AppendBulk(dst []byte, recs []pipeline.Record) []byte {
	for i := range recs {
		r := &recs[i]
		if r.Cond != nil && r.Cond.Create {
			dst = append(dst, `{"create":{"_index":`...)
		} else {
			dst = append(dst, `{"index":{"_index":`...)
		}
		dst = pipeline.AppendJSONString(dst, r.Index)
		dst = append(dst, `,"_id":`...)
		dst = pipeline.AppendJSONString(dst, r.ID)
		if r.Cond != nil && !r.Cond.Create {
			dst = fmt.Appendf(dst, `,"if_seq_no":%d,"if_primary_term":%d`, r.Cond.SeqNo, r.Cond.PrimaryTerm)
		}
		dst = append(dst, "}}\n"...)
		dst = append(dst, r.Doc...)
		dst = append(dst, '\n')
	}
	return dst
}

// send makes a bulk request for recs. When the request as a whole is
// refused for its content (400: one bad document, such as an _id over 512
// bytes, fails the validation of all; 413: too large for the cluster or a
// proxy in front), it is sent again in halves until the document that
// causes it is alone: that one is rejected (dead-lettered), the others go
// through.
func (o *Output) send(ctx context.Context, recs []pipeline.Record) chunkResult {
	res := o.sendOnce(ctx, recs)
	if res.refused == nil {
		return res
	}
	f := *res.refused
	if len(recs) == 1 {
		f.rec = recs[0]
		return chunkResult{rejected: []failure{f}, reason: f.reason}
	}
	if f.status == http.StatusRequestEntityTooLarge {
		o.log.Warn("elasticsearch: bulk request too large (413); sending it in halves (lower elasticsearch.flush_bytes)", "documents", len(recs))
	}
	half := len(recs) / 2
	res = o.send(ctx, recs[:half])
	if ctx.Err() == nil {
		res.merge(o.send(ctx, recs[half:]))
	}
	return res
}

// sendOnce makes one bulk request and reads Elasticsearch's answer item by
// item (one item per action, in order).
func (o *Output) sendOnce(ctx context.Context, recs []pipeline.Record) (res chunkResult) {
	bp := bodyPool.Get().(*[]byte)
	defer bodyPool.Put(bp)
	body := AppendBulk((*bp)[:0], recs)
	*bp = body
	retryAll := func(why string) chunkResult {
		retried.WithLabelValues("0").Add(float64(len(recs)))
		return chunkResult{retry: recs, reason: why}
	}
	req := esapi.BulkRequest{
		Body:       bytes.NewReader(body),
		FilterPath: []string{"errors", "items.*.status", "items.*.error.type", "items.*.error.reason"},
	}
	if o.cfg.Compression {
		g := compress(body, o.cfg.CompressionLevel)
		defer gzipPool.Put(g)
		req.Body = bytes.NewReader(g.buf.Bytes())
		req.Header = http.Header{"Content-Encoding": {"gzip"}}
	}
	resp, err := req.Do(ctx, o.client)
	if err != nil {
		return retryAll(err.Error())
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return retryAll("reading bulk response: " + err.Error())
	}
	if code := resp.StatusCode; code >= 300 {
		typ := gjson.GetBytes(data, "error.type").String()
		why := gjson.GetBytes(data, "error.reason").String()
		if typ == "" {
			typ, why = "bulk_request_refused", fmt.Sprintf("%s: %.200s", resp.Status(), data)
		}
		switch {
		case code == http.StatusBadRequest || code == http.StatusRequestEntityTooLarge:
			badRequests.WithLabelValues(strconv.Itoa(code)).Inc()
			return chunkResult{refused: &failure{status: code, typ: typ, reason: why}}
		case code == http.StatusUnauthorized || code == http.StatusForbidden || code == http.StatusProxyAuthRequired:
			// A rotated password or an expired API key: nothing is wrong
			// with the documents. They wait (buffer, Kafka) until the
			// credentials are fixed.
			badRequests.WithLabelValues(strconv.Itoa(code)).Inc()
			return retryAll(fmt.Sprintf("elasticsearch refused the credentials (%s, %s: %s): check elasticsearch.username/password or api_key and its privileges", resp.Status(), typ, why))
		default:
			// 429, 5xx, and whatever else a cluster or a proxy may say
			// of a whole request (404 for a wrong path, 408 ...): the
			// documents are not the cause; try again later.
			return retryAll(fmt.Sprintf("bulk request: %s: %s: %.200s", resp.Status(), typ, why))
		}
	}
	items := gjson.GetBytes(data, "items")
	if n := int(items.Get("#").Int()); n != len(recs) {
		// Never trust a short or long answer: send all again (ids make
		// that safe).
		return retryAll(fmt.Sprintf("bulk response has %d items for %d actions", n, len(recs)))
	}
	// No errors, and a status for every item (a proxy that lost them
	// would make the answer unknowable: then judge item by item).
	if !gjson.GetBytes(data, "errors").Bool() && bytes.Count(data, []byte(`"status"`)) >= len(recs) {
		res.ok = len(recs)
		return res
	}
	i := 0
	items.ForEach(func(_, item gjson.Result) bool {
		var status int
		var typ, why string
		item.ForEach(func(_, v gjson.Result) bool { // {"index":{...}}
			status = int(v.Get("status").Int())
			typ, why = v.Get("error.type").String(), v.Get("error.reason").String()
			return false
		})
		rec := recs[i]
		i++
		switch {
		case status >= 200 && status < 300:
			res.ok++
		case status == 0:
			// No status: whether it was indexed is unknown. Send it
			// again (its id makes that safe); never dead-letter a
			// document nobody refused.
			retried.WithLabelValues("0").Inc()
			res.retry = append(res.retry, rec)
			res.reason = "bulk answer without an item status"
		case status == http.StatusConflict && rec.Cond != nil:
			res.conflicts = append(res.conflicts, rec)
		case status == http.StatusTooManyRequests || status >= 500 || isBlock(status, typ):
			retried.WithLabelValues(strconv.Itoa(status)).Inc()
			res.retry = append(res.retry, rec)
			res.reason = fmt.Sprintf("%d %s: %s", status, typ, why)
		default:
			res.rejected = append(res.rejected, failure{rec: rec, status: status, typ: typ, reason: why})
		}
		return true
	})
	return res
}

// isBlock tells an item refused because of the cluster's state rather than
// its content: a read-only index (flood-stage disk watermark) or missing
// privileges. It passes once the operator acts; it is retried.
func isBlock(status int, typ string) bool {
	return status == http.StatusUnauthorized || status == http.StatusForbidden && (typ == "cluster_block_exception" || typ == "security_exception")
}

// BreakerOpen reports whether indexing is paused by the circuit breaker,
// and why.
func (o *Output) BreakerOpen() (bool, string) { return o.breaker.state() }

// Ping checks that the cluster answers (used by /readyz and the demo).
func (o *Output) Ping(ctx context.Context) error {
	res, err := esapi.InfoRequest{}.Do(ctx, o.client)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.IsError() {
		return errors.New(res.String())
	}
	return nil
}
