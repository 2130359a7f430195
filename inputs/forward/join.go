package forward

import (
	"slices"
	"strconv"

	"github.com/tidwall/gjson"

	"github.com/logweave/logweave/pipeline"
)

// joiner joins the parts of a line Docker's fluentd driver split (lines
// over 16 KiB: records with partial_message "true", partial_id,
// partial_ordinal and partial_last) into one record, byte-exact, on one
// connection (the driver sends a container's lines on one).
type joiner struct {
	max   int
	tag   string
	lines map[string]*partial
	order []string // open ids, first seen first
}

type partial struct {
	first Entry
	parts []part
	size  int
}

type part struct {
	ordinal int
	text    string
}

func newJoiner(max int) *joiner { return &joiner{max: max, lines: map[string]*partial{}} }

// open reports whether a line is waiting for parts.
func (j *joiner) open() bool { return len(j.order) > 0 }

// add takes a message's entries and returns them with the parts of each
// line replaced by the line, once it is whole (parts still open wait).
func (j *joiner) add(entries []Entry) []Entry {
	out := entries[:0:0]
	for _, e := range entries {
		r := gjson.ParseBytes(e.Record)
		if r.Get("partial_message").String() != "true" {
			out = append(out, e)
			continue
		}
		id := r.Get("partial_id").String()
		p := j.lines[id]
		if p == nil {
			p = &partial{first: e}
			j.lines[id] = p
			j.order = append(j.order, id)
		}
		text := r.Get("log").String()
		ord, _ := strconv.Atoi(r.Get("partial_ordinal").String())
		p.parts = append(p.parts, part{ord, text})
		p.size += len(text)
		if r.Get("partial_last").String() == "true" || p.size >= j.max {
			out = append(out, j.close(id))
		}
	}
	return out
}

// close returns line id, joined, and forgets it.
func (j *joiner) close(id string) Entry {
	p := j.lines[id]
	delete(j.lines, id)
	j.order = slices.DeleteFunc(j.order, func(s string) bool { return s == id })
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

// flush returns the lines still open, each joined from the parts it has.
func (j *joiner) flush() []Entry {
	var out []Entry
	for len(j.order) > 0 {
		out = append(out, j.close(j.order[0]))
	}
	return out
}
