package gelf

import (
	"container/list"
	"encoding/binary"
	"fmt"
	"sync"
	"time"
)

// Reassembler joins chunked GELF datagrams: magic 1e 0f, an 8-byte message
// id, the chunk's sequence number and the chunk count (at most 128). Chunks
// may come in any order and more than once. An incomplete message is
// dropped (and counted) after the timeout, or, oldest first, when the bytes
// held by incomplete messages would pass the bound. The bytes counted are
// what the chunks cost in memory, not only their payload: an empty chunk
// costs its bookkeeping, so a flood of them is bounded too.
//
// Held per message: a partial (partialCost) and its chunk table (a slice
// header per possible chunk); per chunk: its payload in an allocation of
// its own (chunkCost on top of the payload).
const (
	partialCost = 256 // the partial, its list element and map entry
	chunkCost   = 48  // allocation header and rounding of a chunk's copy
)

type Reassembler struct {
	maxMessage int
	maxPending int64
	timeout    time.Duration

	mu      sync.Mutex
	msgs    map[uint64]*list.Element // of *partial, oldest at the front
	order   *list.List
	pending int64
}

type partial struct {
	id     uint64
	chunks [][]byte
	got    int
	bytes  int   // payload
	cost   int64 // memory held, bookkeeping included
	first  time.Time
}

// NewReassembler returns a reassembler with the given bounds.
func NewReassembler(maxMessage int, maxPending int64, timeout time.Duration) *Reassembler {
	return &Reassembler{maxMessage: maxMessage, maxPending: maxPending, timeout: timeout,
		msgs: map[uint64]*list.Element{}, order: list.New()}
}

// Add takes one chunk datagram. It returns the whole (still compressed)
// message when this chunk completed it, nil while chunks are missing.
func (r *Reassembler) Add(pkt []byte, now time.Time) ([]byte, error) {
	if len(pkt) < chunkHdr {
		return nil, fmt.Errorf("%w: chunk of %d bytes", errMalformed, len(pkt))
	}
	id := binary.BigEndian.Uint64(pkt[2:10])
	seq, count := int(pkt[10]), int(pkt[11])
	if count == 0 || count > maxChunks || seq >= count {
		return nil, fmt.Errorf("%w: chunk %d of %d", errMalformed, seq, count)
	}
	data := pkt[chunkHdr:]
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expireLocked(now)
	el, ok := r.msgs[id]
	var p *partial
	if ok {
		p = el.Value.(*partial)
		if len(p.chunks) != count {
			r.drop(el, "chunk_count_mismatch")
			return nil, fmt.Errorf("%w: chunk count changed for message %x", errMalformed, id)
		}
	} else {
		p = &partial{id: id, chunks: make([][]byte, count), first: now, cost: partialCost + int64(count)*24}
		el = r.order.PushBack(p)
		r.msgs[id] = el
		r.pending += p.cost
	}
	if p.chunks[seq] != nil {
		return nil, nil // a duplicate
	}
	if p.bytes+len(data) > r.maxMessage {
		r.drop(el, "too_large")
		return nil, fmt.Errorf("%w: chunked message %x", errTooLarge, id)
	}
	p.chunks[seq] = append(make([]byte, 0, len(data)), data...)
	p.got++
	p.bytes += len(data)
	p.cost += int64(len(data)) + chunkCost
	r.pending += int64(len(data)) + chunkCost
	for r.pending > r.maxPending && r.order.Len() > 0 {
		r.drop(r.order.Front(), "pending_bound")
	}
	if _, still := r.msgs[id]; !still {
		return nil, fmt.Errorf("%w: dropped to stay within max_pending_bytes", errTooLarge)
	}
	pendingBytes.Set(float64(r.pending))
	if p.got < count {
		return nil, nil
	}
	whole := make([]byte, 0, p.bytes)
	for _, c := range p.chunks {
		whole = append(whole, c...)
	}
	r.remove(el)
	return whole, nil
}

// Expire drops the incomplete messages older than the timeout.
func (r *Reassembler) Expire(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expireLocked(now)
}

func (r *Reassembler) expireLocked(now time.Time) {
	for r.order.Len() > 0 {
		front := r.order.Front()
		if now.Sub(front.Value.(*partial).first) < r.timeout {
			return
		}
		r.drop(front, "incomplete_timeout")
	}
}

func (r *Reassembler) drop(el *list.Element, reason string) {
	rejected.WithLabelValues(reason).Inc()
	r.remove(el)
}

func (r *Reassembler) remove(el *list.Element) {
	p := el.Value.(*partial)
	r.order.Remove(el)
	delete(r.msgs, p.id)
	r.pending -= p.cost
	pendingBytes.Set(float64(r.pending))
}

// Pending returns the number of incomplete messages and their bytes.
func (r *Reassembler) Pending() (int, int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.order.Len(), r.pending
}
