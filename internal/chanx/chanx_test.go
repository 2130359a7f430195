package chanx_test

import (
	"context"
	"errors"
	"testing"

	"github.com/logweave/logweave/internal/chanx"
)

func TestSend(t *testing.T) {
	ch := make(chan int, 1)
	if err := chanx.Send(context.Background(), ch, 1); err != nil || <-ch != 1 {
		t.Fatalf("a channel with room: %v", err)
	}
	// Full: it waits for room, and gives up when the context ends.
	ch <- 2
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- chanx.Send(ctx, ch, 3) }()
	if got := <-ch; got != 2 {
		t.Fatalf("got %d", got)
	}
	if err := <-done; err != nil || <-ch != 3 {
		t.Fatalf("after room was made: %v", err)
	}
	ch <- 4
	cancel()
	if err := chanx.Send(ctx, ch, 5); !errors.Is(err, context.Canceled) {
		t.Fatalf("full and cancelled: %v", err)
	}
}
