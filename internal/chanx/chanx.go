// Package chanx holds the one way logweave's stages hand a value to the
// next over a bounded channel.
package chanx

import "context"

// Send puts v on ch, blocking while ch is full (backpressure), and returns
// ctx's error when ctx ends first. A channel with room (the usual case)
// takes v without a select on ctx too.
func Send[T any](ctx context.Context, ch chan<- T, v T) error {
	select {
	case ch <- v:
		return nil
	default:
	}
	select {
	case ch <- v:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
