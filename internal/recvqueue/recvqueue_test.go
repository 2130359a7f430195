package recvqueue

import (
	"bytes"
	"context"
	"testing"
	"time"
)

// The queue between receiver and consumer is bounded by bytes as well as
// count: large messages (a gzip bomb inflates to max_message_bytes from a
// kilobyte) make the receiver wait, not the heap grow; GiveUp ends the wait.
func TestQueueBoundedByBytes(t *testing.T) {
	q := NewQueue(1000, 4<<20)
	big := make([]byte, 1<<20-64)
	for i := 0; i < 4; i++ {
		if !q.Put(big) {
			t.Fatal("put refused")
		}
	}
	put := make(chan bool, 1)
	go func() { put <- q.Put(big) }()
	select {
	case <-put:
		t.Fatal("a fifth MiB was queued past the 4 MiB bound")
	case <-time.After(100 * time.Millisecond):
	}
	q.Done(<-q.C())
	if !<-put {
		t.Fatal("put refused once there was room")
	}
	go func() { put <- q.Put(big) }()
	time.Sleep(20 * time.Millisecond)
	q.GiveUp()
	if <-put {
		t.Fatal("put succeeded past the bound after GiveUp")
	}
}

// joinPairs joins every two messages into one; Expire and Flush hand back
// a lone first half.
type joinPairs struct{ held []byte }

func (j *joinPairs) Add(msg []byte, _ time.Time) [][]byte {
	if j.held == nil {
		j.held = msg
		return nil
	}
	out := append(append([]byte(nil), j.held...), msg...)
	j.held = nil
	return [][]byte{out}
}

func (j *joinPairs) Expire(time.Time) [][]byte { return j.Flush() }

func (j *joinPairs) Flush() [][]byte {
	if j.held == nil {
		return nil
	}
	h := j.held
	j.held = nil
	return [][]byte{h}
}

// Batches cuts batches at their message bound, joins on the way, and when
// ctx ends stores what the queue and the joiner still hold.
func TestBatches(t *testing.T) {
	q := NewQueue(100, 1<<20)
	for _, m := range []string{"a", "b", "c", "d", "e", "f", "g"} {
		q.Put([]byte(m))
	}
	ctx, cancel := context.WithCancel(context.Background())
	var got [][]string
	done := make(chan struct{})
	go func() {
		defer close(done)
		Batches(ctx, q, &joinPairs{}, Batching{Messages: 2, Bytes: 1 << 20, Every: time.Hour}, func(b []Received) {
			var ms []string
			for _, r := range b {
				ms = append(ms, string(r.Payload))
			}
			got = append(got, ms)
		})
	}()
	for len(q.C()) > 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	want := [][]string{{"ab", "cd"}, {"ef", "g"}}
	if len(got) != len(want) {
		t.Fatalf("batches %q, want %q", got, want)
	}
	for i := range want {
		if !bytes.Equal([]byte(joinAll(got[i])), []byte(joinAll(want[i]))) || len(got[i]) != len(want[i]) {
			t.Fatalf("batches %q, want %q", got, want)
		}
	}
}

func joinAll(s []string) string {
	var b bytes.Buffer
	for _, x := range s {
		b.WriteString(x + "|")
	}
	return b.String()
}
