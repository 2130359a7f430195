package correlate

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/logweave/logweave/internal/estest"
	"github.com/logweave/logweave/outputs/elasticsearch"
	"github.com/logweave/logweave/pipeline"
)

// racingLookup lets something happen between a Writer's read of the
// trace documents and its write: another indexer writing the same request.
type racingLookup struct {
	inner   pipeline.Lookup
	once    sync.Once
	between func()
}

func (r *racingLookup) Lookup(ctx context.Context, pattern, field string, values []string) (map[string]pipeline.StoredDoc, error) {
	docs, err := r.inner.Lookup(ctx, pattern, field, values)
	r.once.Do(r.between)
	return docs, err
}

func traceEvent(id, service, eventID string, at time.Time) pipeline.Record {
	return pipeline.Record{Doc: []byte(fmt.Sprintf(`{"@timestamp":%q,"service":{"name":%q},"log":{"level":"info"},"trace":{"id":%q},"event":{"id":%q}}`,
		at.Format(time.RFC3339Nano), service, id, eventID))}
}

// Two indexers write parts of one request at the same moment (around a
// Kafka rebalance): each reads the document, the other writes in between.
// Both parts count: the second write conflicts, is read again and merged.
// Before conditional writes, the last writer's part replaced the other's.
func TestTwoIndexersWritingOneTraceBothCount(t *testing.T) {
	srv := estest.New()
	defer srv.Close()
	esCfg := elasticsearch.DefaultConfig()
	esCfg.URLs = []string{srv.URL}
	out, err := elasticsearch.New(esCfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := WriterConfig{Index: "traces-%{+yyyy.MM.dd}", Config: Config{Window: time.Second, MaxOpenTraces: 100}}
	ctx := context.Background()
	at := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	id := "0123456789abcdef0123456789abcdef"

	for _, first := range []string{"created", "updated"} {
		t.Run(first, func(t *testing.T) {
			a, _ := NewWriter(cfg, out, quiet)
			b, _ := NewWriter(cfg, out, quiet)
			tid := id + first
			if first == "updated" {
				// The document exists already: the race is on an update.
				a.Add(ctx, []pipeline.Record{traceEvent(tid, "gateway", "e0", at)}, at)
				a.Flush(ctx)
			}
			a.Add(ctx, []pipeline.Record{traceEvent(tid, "orders", "e1", at.Add(time.Millisecond)), traceEvent(tid, "orders", "e2", at.Add(2*time.Millisecond))}, at)
			b.Add(ctx, []pipeline.Record{traceEvent(tid, "payments", "e3", at.Add(3*time.Millisecond))}, at)
			a.lookup = &racingLookup{inner: a.lookup, between: func() { b.Flush(ctx) }}
			a.Flush(ctx)

			doc := srv.Docs("traces-2026.11.26")[tid]
			want := 3
			if first == "updated" {
				want = 4
			}
			if n := gjson.GetBytes(doc, "event_count").Int(); n != int64(want) {
				t.Fatalf("event_count %d, want %d: %s", n, want, doc)
			}
			if s := gjson.GetBytes(doc, "services").String(); (first == "created" && s != `["orders","payments"]`) || (first == "updated" && s != `["gateway","orders","payments"]`) {
				t.Errorf("services %s", s)
			}
		})
	}
}

func TestAppendMillisIsAppendFloat(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for i := 0; i < 200000; i++ {
		us := rng.Int64N(1 << uint(1+rng.IntN(54)))
		if i%7 == 0 {
			us = -us
		}
		want := strconv.AppendFloat(nil, float64(us)/1000, 'f', -1, 64)
		if got := appendMillis(nil, us); string(got) != string(want) {
			t.Fatalf("%d µs: got %s want %s", us, got, want)
		}
	}
}
