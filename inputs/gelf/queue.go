package gelf

import (
	"context"
	"time"

	"golang.org/x/sync/semaphore"
)

// Queue hands received messages from the receiver to one consumer,
// bounded by count and by bytes. Put waits for room — UDP datagrams then
// wait in the socket's receive buffer and TCP senders are held back — until
// GiveUp (a shutdown that cannot store more).
type Queue struct {
	c      chan Received
	bytes  *semaphore.Weighted
	max    int64
	giveUp context.Context
	cancel context.CancelFunc
}

// Received is one message in the queue.
type Received struct {
	Payload []byte
	At      time.Time
}

// NewQueue holds at most n messages and maxBytes of payload.
func NewQueue(n int, maxBytes int64) *Queue {
	ctx, cancel := context.WithCancel(context.Background())
	return &Queue{c: make(chan Received, n), bytes: semaphore.NewWeighted(maxBytes), max: maxBytes, giveUp: ctx, cancel: cancel}
}

// Put waits for room for p and queues it; false when the queue gave up.
func (q *Queue) Put(p []byte) bool {
	if q.bytes.Acquire(q.giveUp, q.weight(p)) != nil {
		return false
	}
	select {
	case q.c <- Received{Payload: p, At: time.Now()}:
		return true
	case <-q.giveUp.Done():
		q.bytes.Release(q.weight(p))
		return false
	}
}

// C is where the consumer receives; it calls Done for each message once
// the message is out of the queue's keeping (in a batch bounded apart).
func (q *Queue) C() <-chan Received { return q.c }

// Done returns a received message's bytes to the queue.
func (q *Queue) Done(m Received) { q.bytes.Release(q.weight(m.Payload)) }

// GiveUp makes waiting and later Puts return false.
func (q *Queue) GiveUp() { q.cancel() }

func (q *Queue) weight(p []byte) int64 { return min(int64(len(p))+64, q.max) }
