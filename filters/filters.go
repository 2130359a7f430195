// Package filters holds the collector's processing stages. Each filter reads
// and edits a pipeline.Event in place (edits are spliced in when the event is
// encoded) and never decodes the whole document. Chain runs them in order.
package filters

import "github.com/logweave/logweave/pipeline"

// Filter processes one event in place.
type Filter interface {
	Apply(e *pipeline.Event)
}

// Chain applies filters in order.
type Chain []Filter

// Apply runs every filter of the chain on e.
func (c Chain) Apply(e *pipeline.Event) {
	for _, f := range c {
		f.Apply(e)
	}
}
