// Package kafka is the collector's Kafka buffer. Producer is the ingest's
// sink: it writes each record to the topic keyed by its request id (so all
// events of one request land in one partition) with acks from all in-sync
// replicas, and returns only when Kafka acknowledged them. Consumer is the
// indexer's source: it reads with a consumer group and commits offsets only
// when the caller says the batch was delivered.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	kgo "github.com/segmentio/kafka-go"

	"github.com/logweave/logweave/pipeline"
)

const (
	headerID    = "logweave-id"
	headerIndex = "logweave-index"
	headerTrace = "logweave-trace" // pipeline.TraceFields, binary
)

var (
	produced = promauto.NewCounter(prometheus.CounterOpts{
		Name: "logweave_kafka_produced_total", Help: "Events written to Kafka and acknowledged."})
	produceErrors = promauto.NewCounter(prometheus.CounterOpts{
		Name: "logweave_kafka_produce_errors_total", Help: "Failed Kafka writes (the ingest answered an error; the shipper retries)."})
	consumed = promauto.NewCounter(prometheus.CounterOpts{
		Name: "logweave_kafka_consumed_total", Help: "Events read from Kafka."})
	committed = promauto.NewCounter(prometheus.CounterOpts{
		Name: "logweave_kafka_committed_total", Help: "Events whose offsets were committed after delivery."})
	commitErrors = promauto.NewCounter(prometheus.CounterOpts{
		Name: "logweave_kafka_commit_errors_total", Help: "Failed offset commits (e.g. during a rebalance); those events are read again."})
	lag = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "logweave_kafka_consumer_lag", Help: "Messages behind the partition's high watermark, as of the last fetch."}, []string{"partition"})
)

// EnsureTopic creates the topic on the controller when it does not exist.
func EnsureTopic(ctx context.Context, cfg Config) error {
	d, err := cfg.dialer()
	if err != nil {
		return err
	}
	var conn *kgo.Conn
	for _, b := range cfg.Brokers {
		if conn, err = d.DialContext(ctx, "tcp", b); err == nil {
			break
		}
	}
	if conn == nil {
		return fmt.Errorf("kafka: no broker reachable: %w", err)
	}
	defer conn.Close()
	parts, err := conn.ReadPartitions(cfg.Topic)
	if err == nil && len(parts) > 0 {
		return nil
	}
	ctrl, err := conn.Controller()
	if err != nil {
		return fmt.Errorf("kafka: finding the controller: %w", err)
	}
	cc, err := d.DialContext(ctx, "tcp", net.JoinHostPort(ctrl.Host, strconv.Itoa(ctrl.Port)))
	if err != nil {
		return fmt.Errorf("kafka: dialing the controller: %w", err)
	}
	defer cc.Close()
	err = cc.CreateTopics(kgo.TopicConfig{Topic: cfg.Topic, NumPartitions: cfg.Partitions, ReplicationFactor: cfg.ReplicationFactor})
	if err != nil && !errors.Is(err, kgo.TopicAlreadyExists) {
		return fmt.Errorf("kafka: creating topic %s: %w", cfg.Topic, err)
	}
	return nil
}

// Producer writes records to the topic.
type Producer struct {
	w *kgo.Writer
}

// NewProducer returns a producer; it connects lazily.
func NewProducer(cfg Config) (*Producer, error) {
	codec, err := cfg.codec()
	if err != nil {
		return nil, err
	}
	tc, err := cfg.tlsConfig()
	if err != nil {
		return nil, err
	}
	mech, err := cfg.mechanism()
	if err != nil {
		return nil, err
	}
	return &Producer{w: &kgo.Writer{
		Addr:         kgo.TCP(cfg.Brokers...),
		Topic:        cfg.Topic,
		Balancer:     &kgo.CRC32Balancer{}, // places keys as librdkafka clients do
		RequiredAcks: kgo.RequireAll,
		Compression:  codec,
		BatchSize:    cfg.BatchSize,
		BatchBytes:   int64(cfg.BatchBytes),
		BatchTimeout: cfg.Linger,
		MaxAttempts:  3,
		Transport:    &kgo.Transport{TLS: tc, SASL: mech, DialTimeout: 10 * time.Second},
	}}, nil
}

// Write sends recs and returns once all are acknowledged by all in-sync
// replicas. It implements the ingest's Sink.
func (p *Producer) Write(ctx context.Context, recs []pipeline.Record) error {
	msgs := make([]kgo.Message, len(recs))
	for i := range recs {
		r := &recs[i]
		key := r.Key
		if key == "" {
			key = r.ID
		}
		msgs[i] = kgo.Message{
			Key:   []byte(key),
			Value: r.Doc,
			Headers: []kgo.Header{
				{Key: headerID, Value: []byte(r.ID)},
				{Key: headerIndex, Value: []byte(r.Index)},
			},
		}
		if len(r.Trace) > 0 {
			msgs[i].Headers = append(msgs[i].Headers, kgo.Header{Key: headerTrace, Value: r.Trace})
		}
	}
	if err := p.w.WriteMessages(ctx, msgs...); err != nil {
		produceErrors.Inc()
		return fmt.Errorf("kafka: write: %w", err)
	}
	produced.Add(float64(len(recs)))
	return nil
}

// Close flushes and closes the writer.
func (p *Producer) Close() error { return p.w.Close() }

// Consumer reads records with a consumer group.
type Consumer struct {
	r       *kgo.Reader
	log     *slog.Logger
	maxWait time.Duration
}

// NewConsumer joins the group; reading starts at the committed offsets
// (at the beginning of the topic for a new group).
func NewConsumer(cfg Config, log *slog.Logger) (*Consumer, error) {
	d, err := cfg.dialer()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	r := kgo.NewReader(kgo.ReaderConfig{
		Brokers:           cfg.Brokers,
		GroupID:           cfg.Group,
		Topic:             cfg.Topic,
		Dialer:            d,
		MinBytes:          1,
		MaxBytes:          int(cfg.FetchMaxBytes),
		MaxWait:           250 * time.Millisecond,
		CommitInterval:    0, // synchronous commits, only when told
		StartOffset:       kgo.FirstOffset,
		HeartbeatInterval: time.Second,
		SessionTimeout:    10 * time.Second,
		RebalanceTimeout:  10 * time.Second,
		ReadBackoffMin:    50 * time.Millisecond,
		ReadBackoffMax:    time.Second,
		Logger:            nil,
		ErrorLogger:       kgo.LoggerFunc(func(msg string, args ...any) { log.Debug("kafka-go: " + fmt.Sprintf(msg, args...)) }),
	})
	return &Consumer{r: r, log: log, maxWait: 50 * time.Millisecond}, nil
}

// Next returns up to max records (and about maxBytes), waiting for the first
// one until ctx ends and then at most a short linger for more. commit marks
// them delivered: it commits their offsets.
func (c *Consumer) Next(ctx context.Context, max, maxBytes int) ([]pipeline.Record, func(context.Context) error, error) {
	var msgs []kgo.Message
	m, err := c.r.FetchMessage(ctx)
	if err != nil {
		return nil, nil, err
	}
	msgs = append(msgs, m)
	size := len(m.Value)
	linger, cancel := context.WithTimeout(ctx, c.maxWait)
	for len(msgs) < max && size < maxBytes {
		m, err := c.r.FetchMessage(linger)
		if err != nil {
			break
		}
		msgs = append(msgs, m)
		size += len(m.Value)
	}
	cancel()
	recs := make([]pipeline.Record, len(msgs))
	last := map[int]kgo.Message{}
	for i, m := range msgs {
		recs[i] = pipeline.Record{Key: string(m.Key), Doc: m.Value}
		for _, h := range m.Headers {
			switch h.Key {
			case headerID:
				recs[i].ID = string(h.Value)
			case headerIndex:
				recs[i].Index = string(h.Value)
			case headerTrace:
				recs[i].Trace = h.Value
			}
		}
		last[m.Partition] = m
	}
	for p, m := range last {
		lag.WithLabelValues(strconv.Itoa(p)).Set(float64(max64(m.HighWaterMark-m.Offset-1, 0)))
	}
	consumed.Add(float64(len(msgs)))
	commit := func(ctx context.Context) error {
		if err := c.r.CommitMessages(ctx, msgs...); err != nil {
			commitErrors.Inc()
			return fmt.Errorf("kafka: commit: %w", err)
		}
		committed.Add(float64(len(msgs)))
		return nil
	}
	return recs, commit, nil
}

func max64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

// Close leaves the group.
func (c *Consumer) Close() error { return c.r.Close() }
