package e2e

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/logweave/logweave/collector"
	"github.com/logweave/logweave/filters"
	"github.com/logweave/logweave/inputs/ingest"
	"github.com/logweave/logweave/internal/estest"
	"github.com/logweave/logweave/internal/kafkatest"
	"github.com/logweave/logweave/outputs/kafka"
	"github.com/logweave/logweave/pipeline"
)

func benchBatch(n, from int) []byte {
	var body []byte
	for i := from; i < from+n; i++ {
		e := pipeline.Envelope{ID: fmt.Sprintf("ev-%d", i), ReadAt: time.Now(), Host: "node-1", Path: "/var/log/app/payment.log", Offset: int64(i) * 200,
			Line: []byte(fmt.Sprintf(`{"time":"2026-11-26T10:15:00.123Z","level":"INFO","service":"payment","msg":"charged card %d","request_id":"req-%d","amount":42.5}`, i, i/5))}
		body = append(e.AppendJSON(body), '\n')
	}
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	zw.Write(body)
	zw.Close()
	return zb.Bytes()
}

// BenchmarkIngestToKafka: gzip NDJSON batches of 1000 envelopes through the
// ingest handler (parse, normalise, encode) into Kafka (kfake on loopback,
// acks=all, snappy), two requests at a time as two shippers would send.
// One op is one event.
func BenchmarkIngestToKafka(b *testing.B) {
	k := kafkatest.Start(b, 6)
	cfg := kafka.DefaultConfig()
	cfg.Brokers, cfg.Topic = k.Brokers, k.Topic
	p, err := kafka.NewProducer(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	idx, _ := pipeline.ParseIndexPattern("logs-%{+yyyy.MM.dd}")
	h := &ingest.Handler{Processor: filters.NewProcessor(idx, nil), Sink: p}
	const per = 1000
	batches := make([][]byte, 8)
	for i := range batches {
		batches[i] = benchBatch(per, i*per)
	}
	b.SetParallelism(1)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if i%per == 0 {
				req := httptest.NewRequest(http.MethodPost, "/v1/events", bytes.NewReader(batches[(i/per)%len(batches)]))
				req.Header.Set("Content-Encoding", "gzip")
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != 200 {
					b.Error(rec.Code, rec.Body.String())
					return
				}
			}
			i++
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkKafkaToBulk: the indexer role reading a topic (kfake) and
// bulk-indexing into a counting Elasticsearch server, offsets committed
// per batch. One op is one event.
func BenchmarkKafkaToBulk(b *testing.B) {
	k := kafkatest.Start(b, 6)
	es := estest.NewCounter()
	defer es.Close()
	cfg := collector.DefaultConfig()
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.Kafka.Brokers, cfg.Kafka.Topic, cfg.Kafka.Group = k.Brokers, k.Topic, k.Topic+"-bench"
	cfg.Elasticsearch.URLs = []string{es.URL}
	env := &kafkaEnv{k: k, es: nil, cfg: func(testing.TB) *collector.Config { return cfg }}
	env.produce(b, 0, b.N)
	c, err := collector.NewRole(cfg, collector.RoleIndex, quiet)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	c.Start()
	deadline := time.Now().Add(5 * time.Minute)
	for c.Indexed() < int64(b.N) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	stopCollector(b, c)
}
