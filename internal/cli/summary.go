package cli

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Stat is one figure of the periodic summary line.
type Stat struct {
	Key    string         // its name in the line
	Metric string         // a metric of the gatherer, summed over its series …
	Func   func() float64 // … or a function
	// Delta prints the increase since the previous line (counters);
	// otherwise the value now (gauges).
	Delta bool
}

// Summarize logs one line with stats every `every` until ctx ends (Filebeat's
// "Non-zero metrics in the last 30s", Vector's internal metrics in one
// line): a process that says nothing is otherwise indistinguishable from one
// that hangs. every <= 0: never.
func Summarize(ctx context.Context, log *slog.Logger, every time.Duration, g prometheus.Gatherer, stats []Stat) {
	if every <= 0 {
		return
	}
	prev := make([]float64, len(stats)) // counters start at zero with the process
	values := func() []float64 {
		sums := metricSums(g)
		out := make([]float64, len(stats))
		for i, s := range stats {
			if s.Func != nil {
				out[i] = s.Func()
			} else {
				out[i] = sums[s.Metric]
			}
		}
		return out
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := values()
		attrs := []any{"last", every.String()}
		for i, s := range stats {
			v := now[i]
			if s.Delta {
				v -= prev[i]
			}
			attrs = append(attrs, s.Key, int64(v))
		}
		prev = now
		log.Info("summary", attrs...)
	}
}

// metricSums is every counter and gauge of g, summed over its series.
func metricSums(g prometheus.Gatherer) map[string]float64 {
	sums := map[string]float64{}
	if mfs, err := g.Gather(); err == nil {
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				sums[mf.GetName()] += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return sums
}

// MetricSum is the sum of the named metrics of g, over all their series.
func MetricSum(g prometheus.Gatherer, names ...string) float64 {
	sums := metricSums(g)
	var total float64
	for _, n := range names {
		total += sums[n]
	}
	return total
}
