package pipeline_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/logweave/logweave/pipeline"
)

// fails answers with errs in turn, then nil; it counts the calls.
type fails struct {
	errs  []error
	calls int
}

func (f *fails) Receive(context.Context, string, []pipeline.Envelope) error {
	f.calls++
	if f.calls <= len(f.errs) {
		return f.errs[f.calls-1]
	}
	return nil
}

func TestReceiveRetrying(t *testing.T) {
	ctx := context.Background()
	full := pipeline.ErrFull
	// Full twice, then taken.
	r := &fails{errs: []error{full, full}}
	if err := pipeline.ReceiveRetrying(ctx, r, "x", nil, time.Minute); err != nil || r.calls != 3 {
		t.Fatalf("err %v after %d calls, want nil after 3", err, r.calls)
	}
	// Another error is the sender's to handle: at once.
	boom := errors.New("boom")
	r = &fails{errs: []error{boom}}
	if err := pipeline.ReceiveRetrying(ctx, r, "x", nil, time.Minute); !errors.Is(err, boom) || r.calls != 1 {
		t.Fatalf("err %v after %d calls", err, r.calls)
	}
	// Full for longer than the wait: full, after about the wait.
	r = &fails{errs: make([]error, 1000)}
	for i := range r.errs {
		r.errs[i] = full
	}
	start := time.Now()
	if err := pipeline.ReceiveRetrying(ctx, r, "x", nil, 300*time.Millisecond); !errors.Is(err, full) || time.Since(start) > 2*time.Second {
		t.Fatalf("err %v after %s", err, time.Since(start))
	}
}

func TestReceiveUnacked(t *testing.T) {
	boom := errors.New("boom")
	// Any error is tried again until taken.
	r := &fails{errs: []error{boom, pipeline.ErrFull}}
	var seen []error
	if err := pipeline.ReceiveUnacked(context.Background(), r, "x", nil, func(err error) { seen = append(seen, err) }); err != nil || r.calls != 3 || len(seen) != 2 {
		t.Fatalf("err %v, %d calls, %d failures seen", err, r.calls, len(seen))
	}
	// Too large never fits: not tried again.
	r = &fails{errs: []error{pipeline.ErrTooLarge}}
	if err := pipeline.ReceiveUnacked(context.Background(), r, "x", nil, nil); !errors.Is(err, pipeline.ErrTooLarge) || r.calls != 1 {
		t.Fatalf("err %v after %d calls", err, r.calls)
	}
	// Shutdown: one last try, whose answer is returned.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r = &fails{errs: []error{boom}}
	if err := pipeline.ReceiveUnacked(ctx, r, "x", nil, nil); !errors.Is(err, boom) || r.calls != 1 {
		t.Fatalf("after shutdown: err %v after %d calls, want the last try's error", err, r.calls)
	}
}
