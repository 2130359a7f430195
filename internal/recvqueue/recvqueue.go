// Package recvqueue carries what a receiver without acknowledgements
// (GELF, syslog) received to the one goroutine that stores it: a Queue
// bounded by count and by bytes, and Batches, which takes the queue in
// batches, joining split messages on the way. The collector and the
// shipper both receive this way.
package recvqueue

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

// Joiner joins what a queue holds into messages (GELF: the lines Docker
// split). Add takes one received message and returns those now whole;
// Expire returns those whose wait ran out; Flush returns everything held.
type Joiner interface {
	Add(msg []byte, now time.Time) [][]byte
	Expire(now time.Time) [][]byte
	Flush() [][]byte
}

// Batching bounds a batch: at most Messages messages or Bytes of payload,
// and every Every what has come (its joiner's expired messages too).
type Batching struct {
	Messages int
	Bytes    int
	Every    time.Duration
}

// Batches takes q into batches bounded by b, each handed to store; j
// (nil: none) joins messages before they are batched (the queue counts a
// message only until it is taken). When ctx ends it takes what is left in
// the queue and the joiner, stores it and returns.
func Batches(ctx context.Context, q *Queue, j Joiner, b Batching, store func([]Received)) {
	var batch []Received
	size := 0
	add := func(at time.Time, msgs [][]byte) {
		for _, p := range msgs {
			batch = append(batch, Received{Payload: p, At: at})
			size += len(p)
		}
	}
	take := func(m Received) {
		q.Done(m)
		if j == nil {
			batch = append(batch, m)
			size += len(m.Payload)
			return
		}
		add(m.At, j.Add(m.Payload, m.At))
	}
	flush := func() {
		if len(batch) > 0 {
			store(batch)
			batch, size = batch[:0], 0
		}
	}
	tick := time.NewTicker(b.Every)
	defer tick.Stop()
	for {
		select {
		case m := <-q.C():
			take(m)
			if len(batch) >= b.Messages || size >= b.Bytes {
				flush()
			}
		case now := <-tick.C:
			if j != nil {
				add(now, j.Expire(now))
			}
			flush()
		case <-ctx.Done():
			for {
				select {
				case m := <-q.C():
					take(m)
				default:
					if j != nil {
						add(time.Now(), j.Flush())
					}
					flush()
					return
				}
			}
		}
	}
}
