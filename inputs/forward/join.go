package forward

import (
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/tidwall/gjson"

	"github.com/logweave/logweave/pipeline"
)

// joiner joins the parts of a line Docker's fluentd driver split (lines
// over 16 KiB: records with partial_message "true", partial_id,
// partial_ordinal and partial_last) into one record, byte-exact. It is the
// server's, not a connection's: a driver whose ack timed out reconnects and
// sends the part again, on another connection, and the line's earlier parts
// (already acknowledged) must still be there. A part sent twice counts
// once. A line left open (its sender went away) is stored as it is after
// partialTimeout, or at Close; open lines hold at most maxOpenBytes (past
// it, the oldest is stored as it is).
type joiner struct {
	mu    sync.Mutex
	max   int // bytes of one line
	lines map[string]*partial
	order []string // open ids, first seen first
	bytes int
}

// partialTimeout is how long a line waits for its next part.
const partialTimeout = 10 * time.Second

// maxOpenBytes bounds the parts held for all open lines.
const maxOpenBytes = 64 << 20

type partial struct {
	tag   string
	first Entry
	parts []part
	size  int
	seen  time.Time
}

type part struct {
	ordinal int
	text    string
}

// Line is a line joined (or given up on), with its message's tag.
type Line struct {
	Tag   string
	Entry Entry
}

func newJoiner(max int) *joiner { return &joiner{max: max, lines: map[string]*partial{}} }

// add takes a message's entries and returns them with the parts of each
// line replaced by the line, once it is whole (parts still open wait), and
// the lines pushed out by the memory bound (to store as they are).
func (j *joiner) add(tag string, entries []Entry, now time.Time) (out []Entry, evicted []Line) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, e := range entries {
		r := gjson.ParseBytes(e.Record)
		if r.Get("partial_message").String() != "true" {
			out = append(out, e)
			continue
		}
		id := r.Get("partial_id").String()
		p := j.lines[id]
		if p == nil {
			p = &partial{tag: tag, first: e}
			j.lines[id] = p
			j.order = append(j.order, id)
		}
		p.seen = now
		ord, _ := strconv.Atoi(r.Get("partial_ordinal").String())
		if slices.ContainsFunc(p.parts, func(x part) bool { return x.ordinal == ord }) {
			continue // sent again after its ack was lost
		}
		text := r.Get("log").String()
		p.parts = append(p.parts, part{ord, text})
		p.size += len(text)
		j.bytes += len(text)
		if r.Get("partial_last").String() == "true" || p.size >= j.max {
			out = append(out, j.close(id))
		}
	}
	for j.bytes > maxOpenBytes && len(j.order) > 0 {
		id := j.order[0]
		tag := j.lines[id].tag // before close forgets the line
		evicted = append(evicted, Line{tag, j.close(id)})
	}
	return out, evicted
}

// close returns line id, joined, and forgets it.
func (j *joiner) close(id string) Entry {
	p := j.lines[id]
	delete(j.lines, id)
	j.order = slices.DeleteFunc(j.order, func(s string) bool { return s == id })
	j.bytes -= p.size
	slices.SortStableFunc(p.parts, func(a, b part) int { return a.ordinal - b.ordinal })
	text := make([]byte, 0, p.size)
	for _, pt := range p.parts {
		text = append(text, pt.text...)
	}
	var e pipeline.Event
	e.SetObject(p.first.Record)
	e.SetString("log", string(text))
	for _, k := range []string{"partial_message", "partial_id", "partial_ordinal", "partial_last"} {
		e.Delete(k)
	}
	return Entry{Time: p.first.Time, Record: e.Encode(nil)}
}

// expire returns the lines that waited partialTimeout for a part (all of
// them when all), each joined from the parts it has.
func (j *joiner) expire(now time.Time, all bool) []Line {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []Line
	for _, id := range slices.Clone(j.order) {
		if p := j.lines[id]; all || now.Sub(p.seen) >= partialTimeout {
			out = append(out, Line{p.tag, j.close(id)})
		}
	}
	return out
}
