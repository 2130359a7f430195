// Package malformed accounts for input an input refused: one metric,
// logweave_input_malformed_total{input,reason}, for every protocol, and a
// log line at most once a second per input, so a flood of bad input
// cannot flood the log. The collector's and the shipper's receivers share
// it.
package malformed

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var refused = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "logweave_input_malformed_total", Help: "Input refused by an input's protocol, by input (forward, ...) and reason (malformed, too_large, truncated, timeout, connections)."}, []string{"input", "reason"})

// Count counts input an input refused, by reason.
func Count(input, reason string) { refused.WithLabelValues(input, reason).Inc() }

// Reason names why a stream's framing failed, for Count and Refuse:
// too_large (err is one of tooLarge), timeout (a message begun did not
// arrive in time), truncated (the connection ended inside one), else
// malformed.
func Reason(err error, tooLarge ...error) string {
	for _, t := range tooLarge {
		if errors.Is(err, t) {
			return "too_large"
		}
	}
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated"
	}
	return "malformed"
}

var logged sync.Map // input → *atomic.Int64, Unix ns of its last log line

// Refuse counts input an input refused (Count) and logs it, at most once a
// second per input.
func Refuse(log *slog.Logger, input, reason string, err error, from net.Addr) {
	Count(input, reason)
	v, _ := logged.LoadOrStore(input, new(atomic.Int64))
	last, now := v.(*atomic.Int64), time.Now().UnixNano()
	if l := last.Load(); now-l >= int64(time.Second) && last.CompareAndSwap(l, now) {
		addr := ""
		if from != nil {
			addr = from.String()
		}
		log.Warn(input+": input refused", "reason", reason, "error", err, "from", addr)
	}
}
