// Package elasticsearch is the collector's Elasticsearch output: it bulk-
// indexes records into their daily indices with go-elasticsearch's
// esutil.BulkIndexer, retries what is retryable (429, 5xx, network) with
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
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	es "github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/elastic/go-elasticsearch/v8/esutil"
	"github.com/logweave/logweave/pipeline"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Config is the collector's `elasticsearch:` section.
type Config struct {
	URLs             []string          `yaml:"urls"`
	Username         string            `yaml:"username"`
	Password         string            `yaml:"password"`
	APIKey           string            `yaml:"api_key"`
	CACert           string            `yaml:"ca_cert"`
	Index            string            `yaml:"index"`
	TracesIndex      string            `yaml:"traces_index"`
	DeadLetterIndex  string            `yaml:"dead_letter_index"`
	Workers          int               `yaml:"workers"`
	FlushBytes       pipeline.ByteSize `yaml:"flush_bytes"`
	Compression      bool              `yaml:"compression"`
	RetryInitial     time.Duration     `yaml:"retry_initial"`
	RetryMax         time.Duration     `yaml:"retry_max"`
	BreakerFailures  int               `yaml:"breaker_failures"`
	BreakerCooldown  time.Duration     `yaml:"breaker_cooldown"`
	Shards           int               `yaml:"shards"`
	Replicas         int               `yaml:"replicas"`
	TotalFieldsLimit int               `yaml:"total_fields_limit"`
	RetentionDays    int               `yaml:"retention_days"`
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
		RetryInitial:     200 * time.Millisecond,
		RetryMax:         30 * time.Second,
		BreakerFailures:  5,
		BreakerCooldown:  10 * time.Second,
		Shards:           1,
		Replicas:         1,
		TotalFieldsLimit: 2000,
	}
}

// Validate checks the section; prefix is its key path for messages.
func (c *Config) Validate(prefix string) error {
	for _, p := range []struct{ key, val string }{{"index", c.Index}, {"traces_index", c.TracesIndex}, {"dead_letter_index", c.DeadLetterIndex}} {
		if _, err := pipeline.ParseIndexPattern(p.val); err != nil {
			return fmt.Errorf("%s.%s: %w", prefix, p.key, err)
		}
	}
	for i, u := range c.URLs {
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			return fmt.Errorf("%s.urls[%d]: %q must start with http:// or https://", prefix, i, u)
		}
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
	dropped = promauto.NewCounter(prometheus.CounterOpts{
		Name: "logweave_elasticsearch_dropped_total", Help: "Dead-letter documents Elasticsearch rejected too (logged with their reason)."})
	bulkSeconds = promauto.NewHistogram(prometheus.HistogramOpts{
		Name: "logweave_elasticsearch_bulk_duration_seconds", Help: "Time to index one batch, retries included.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)})
)

// Output writes records to Elasticsearch.
type Output struct {
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
		Addresses:           cfg.URLs,
		Username:            cfg.Username,
		Password:            cfg.Password,
		APIKey:              cfg.APIKey,
		CompressRequestBody: cfg.Compression,
		RetryOnStatus:       []int{http.StatusTooManyRequests, 502, 503, 504},
		MaxRetries:          2,
		RetryBackoff:        func(i int) time.Duration { return time.Duration(i) * 100 * time.Millisecond },
	}
	if cfg.CACert != "" {
		pem, err := os.ReadFile(cfg.CACert)
		if err != nil {
			return nil, fmt.Errorf("elasticsearch.ca_cert: %w", err)
		}
		esCfg.CACert = pem
	}
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
// (with backoff) until then, so nothing is dropped silently.
func (o *Output) Write(ctx context.Context, recs []pipeline.Record) error {
	start := time.Now()
	defer func() { bulkSeconds.Observe(time.Since(start).Seconds()) }()
	pending := recs
	isDLQ := map[string]bool{} // id+index of dead-letter records in pending
	backoff := o.cfg.RetryInitial
	for len(pending) > 0 {
		if err := o.breaker.wait(ctx); err != nil {
			return err
		}
		retry, rejected, failed, err := o.bulk(ctx, pending)
		if err != nil {
			return err
		}
		// The attempt failed as a whole when nothing got through and the
		// cluster answered nothing useful (network, 5xx, all 429).
		whole := len(retry) == len(pending) && len(rejected) == 0
		if o.breaker.result(!whole, failed) {
			o.log.Error("elasticsearch: circuit breaker open; indexing paused", "cooldown", o.cfg.BreakerCooldown.String(), "reason", failed)
		}
		for _, f := range rejected {
			if isDLQ[f.rec.ID+"\x00"+f.rec.Index] {
				dropped.Inc()
				o.log.Error("dead-letter document rejected too; dropped", "id", f.rec.ID, "status", f.status, "error.type", f.typ, "error.message", f.reason)
				continue
			}
			deadLettered.Inc()
			o.log.Warn("document rejected, sent to dead-letter index", "id", f.rec.ID, "index", f.rec.Index, "status", f.status, "error.type", f.typ, "error.message", f.reason)
			d := o.deadLetter(f)
			isDLQ[d.ID+"\x00"+d.Index] = true
			retry = append(retry, d)
		}
		if len(retry) > 0 && len(rejected) == 0 {
			// Only retryable failures: back off before trying again.
			sleep := backoff/2 + rand.N(backoff/2+1)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(sleep):
			}
			backoff = min(backoff*2, o.cfg.RetryMax)
		}
		pending = retry
	}
	return nil
}

// deadLetter wraps a rejected record: the original document as a string,
// the index it was meant for, and Elasticsearch's error.
func (o *Output) deadLetter(f failure) pipeline.Record {
	now := time.Now().UTC()
	b := []byte(`{"@timestamp":"`)
	b = now.AppendFormat(b, "2006-01-02T15:04:05.000Z")
	b = append(b, `","event":{"original":`...)
	b = pipeline.AppendJSONString(b, string(f.rec.Doc))
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
	b = append(b, `}}`...)
	return pipeline.Record{ID: f.rec.ID, Index: o.dlq.Format(now), Key: f.rec.Key, Doc: b}
}

// bulk sends recs once through a BulkIndexer and sorts the outcome.
// It also returns one failure reason, for the breaker and the logs.
func (o *Output) bulk(ctx context.Context, recs []pipeline.Record) ([]pipeline.Record, []failure, string, error) {
	bi, err := esutil.NewBulkIndexer(esutil.BulkIndexerConfig{
		Client:        o.client,
		NumWorkers:    o.cfg.Workers,
		FlushBytes:    int(o.cfg.FlushBytes),
		FlushInterval: time.Hour, // Close flushes
	})
	if err != nil {
		return nil, nil, "", err
	}
	// The callbacks run on the indexer's workers, possibly after an early
	// return on a cancelled context: they only touch these, under mu.
	var (
		mu       sync.Mutex
		ok       int
		retry    []pipeline.Record
		rejected []failure
		reason   string
	)
	for i := range recs {
		rec := recs[i]
		item := esutil.BulkIndexerItem{
			Action:     "index",
			Index:      rec.Index,
			DocumentID: rec.ID,
			Body:       bytes.NewReader(rec.Doc),
			OnSuccess: func(context.Context, esutil.BulkIndexerItem, esutil.BulkIndexerResponseItem) {
				mu.Lock()
				ok++
				mu.Unlock()
			},
			OnFailure: func(_ context.Context, _ esutil.BulkIndexerItem, res esutil.BulkIndexerResponseItem, err error) {
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil: // the whole request failed: network, 5xx, 429
					retried.WithLabelValues("0").Inc()
					retry = append(retry, rec)
					reason = err.Error()
				case res.Status == http.StatusTooManyRequests || res.Status >= 500:
					retried.WithLabelValues(fmt.Sprint(res.Status)).Inc()
					retry = append(retry, rec)
					reason = fmt.Sprintf("%d %s: %s", res.Status, res.Error.Type, res.Error.Reason)
				default:
					rejected = append(rejected, failure{rec: rec, status: res.Status, typ: res.Error.Type, reason: res.Error.Reason})
				}
			},
		}
		if err := bi.Add(ctx, item); err != nil {
			bi.Close(context.Background())
			return nil, nil, "", err
		}
	}
	if err := bi.Close(ctx); err != nil && ctx.Err() != nil {
		return nil, nil, "", ctx.Err()
	}
	mu.Lock()
	defer mu.Unlock()
	indexed.Add(float64(ok))
	if missing := len(recs) - ok - len(retry) - len(rejected); missing > 0 {
		// BulkIndexer loses items whose response is missing; never trust
		// that silently.
		return nil, nil, "", fmt.Errorf("elasticsearch: %d bulk items got no result", missing)
	}
	if len(retry) > 0 {
		o.log.Warn("bulk items failed, will retry", "count", len(retry), "of", len(recs), "reason", reason)
	}
	return retry, rejected, reason, nil
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
