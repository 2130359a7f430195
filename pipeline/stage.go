package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// The contracts between the stages of a pipeline: inputs hand what they
// decoded to a Receiver; the collector's receiver runs the filters and
// writes the records to a Sink (the disk buffer or Kafka); the indexer
// takes batches from a Source and writes them to an Output.

// Receiver is where a network input (Forward, Beats, OTLP, syslog, GELF)
// hands the events it decoded, as envelopes. Receive returns once they are
// durable (nil): that is the acknowledgement the input passes on to its
// sender (Forward's ack, Beats' ACK, OTLP's 200). An error says they are
// not: ErrFull (the store cannot take more now: backpressure), ErrTooLarge
// (it never will), another failure. The collector's receiver runs the
// filters into its buffer; the shipper's appends to the input's spool.
type Receiver interface {
	Receive(ctx context.Context, input string, envs []Envelope) error
}

// Sink makes records durable: Write returns nil only once they will survive
// a crash of the collector.
type Sink interface {
	Write(ctx context.Context, recs []Record) error
}

// Source hands the indexer batches; commit marks a batch delivered.
type Source interface {
	// Next returns a batch, valid until Next is called again, and the
	// function that commits it.
	Next(ctx context.Context, max, maxBytes int) ([]Record, func(context.Context) error, error)
}

// Output receives batches from the indexer; Write returns nil only when
// every record was delivered (or dead-lettered).
type Output interface {
	Write(ctx context.Context, recs []Record) error
}

// ErrFull is returned by a Sink or Receiver that cannot take more now; the
// sender is told to try again later.
var ErrFull = errors.New("sink full")

// ErrTooLarge is returned by a Sink or Receiver that could never take the
// records given together (e.g. more than the buffer's max_bytes).
var ErrTooLarge = errors.New("batch larger than the sink can ever hold")

// ReceiveRetrying hands envs to r, trying again with backoff (50 ms to 2 s)
// while r is full, until it takes them, ctx ends, or wait has passed (0: no
// bound). A protocol with acknowledgements bounds the wait (its sender
// sends again what was not acknowledged); one without waits, holding its
// senders back.
func ReceiveRetrying(ctx context.Context, r Receiver, input string, envs []Envelope, wait time.Duration) error {
	if wait > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, wait)
		defer cancel()
	}
	for backoff := 50 * time.Millisecond; ; backoff = min(backoff*2, 2*time.Second) {
		err := r.Receive(ctx, input, envs)
		if err == nil || !errors.Is(err, ErrFull) {
			return err
		}
		select {
		case <-ctx.Done():
			if wait > 0 {
				return fmt.Errorf("full for %s: %w", wait, err)
			}
			return err
		case <-time.After(backoff):
		}
	}
}

// ReceiveUnacked hands envs to r for a protocol without acknowledgements
// (GELF, syslog): what it received cannot be sent again, so it tries again
// with backoff (50 ms to 2 s) after any error but ErrTooLarge, calling
// failed with it, until r takes them or ctx ends (shutdown); then once
// more, for at most 5 s. The error it returns is that last try's: what it
// did not take is lost.
func ReceiveUnacked(ctx context.Context, r Receiver, input string, envs []Envelope, failed func(error)) error {
	for backoff := 50 * time.Millisecond; ctx.Err() == nil; backoff = min(backoff*2, 2*time.Second) {
		err := r.Receive(ctx, input, envs)
		if err == nil || errors.Is(err, ErrTooLarge) {
			return err
		}
		if failed != nil {
			failed(err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
	}
	last, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return r.Receive(last, input, envs)
}
