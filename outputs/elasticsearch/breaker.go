package elasticsearch

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	breakerOpenGauge = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "logweave_elasticsearch_breaker_open", Help: "1 while the circuit breaker to Elasticsearch is open."})
	breakerOpened = promauto.NewCounter(prometheus.CounterOpts{
		Name: "logweave_elasticsearch_breaker_opened_total", Help: "Times the circuit breaker opened."})
)

// breaker stops the indexer from hammering a failing cluster: after
// `threshold` consecutive failed bulk attempts it opens for `cooldown`,
// during which no request is sent; then one request probes, and its
// success closes the breaker (its failure opens it again).
type breaker struct {
	threshold int
	cooldown  time.Duration

	mu        sync.Mutex
	failures  int
	open      bool
	openUntil time.Time
	why       string
}

// wait blocks while the breaker is open.
func (b *breaker) wait(ctx context.Context) error {
	for {
		b.mu.Lock()
		if !b.open {
			b.mu.Unlock()
			return nil
		}
		d := time.Until(b.openUntil)
		b.mu.Unlock()
		if d <= 0 {
			return nil // half-open: the caller's request is the probe
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
		}
	}
}

// result records the outcome of one bulk attempt.
func (b *breaker) result(ok bool, why string) (opened bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ok {
		b.failures = 0
		if b.open {
			b.open = false
			breakerOpenGauge.Set(0)
		}
		return false
	}
	b.failures++
	if b.open || b.failures >= b.threshold {
		opened = !b.open
		b.open, b.openUntil, b.why = true, time.Now().Add(b.cooldown), why
		breakerOpenGauge.Set(1)
		if opened {
			breakerOpened.Inc()
		}
	}
	return opened
}

func (b *breaker) state() (bool, string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.open, b.why
}
