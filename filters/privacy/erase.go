package privacy

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/tidwall/gjson"
)

// Store is where erasure looks and deletes: Elasticsearch
// (outputs/elasticsearch.Output). Index names are patterns (logs-*).
type Store interface {
	Count(ctx context.Context, index string, query []byte) (int64, error)
	Search(ctx context.Context, index string, body []byte) ([]byte, error)
	DeleteByQuery(ctx context.Context, index string, query []byte, progress func(deleted, total int64)) (deleted, conflicts int64, err error)
}

// Erasure is one data subject's erasure (GDPR art. 17): the documents
// whose Field holds one of Values, in the log indices; the dead letters
// that hold one of them; and the traces of the requests those documents
// are part of.
type Erasure struct {
	Field                     string
	Values                    []string // the pseudonyms under every key (or the value itself)
	Logs, Traces, DeadLetters string   // index patterns; "" skips one
}

// ErasureValues is what to look for in field for value: its pseudonyms
// under every key when a rule pseudonymises field (pseudonymized true),
// else the value as given.
func (r *Redactor) ErasureValues(field, value string) (values []string, pseudonymized bool) {
	if r.ruleFor(field) == Pseudonymize {
		return r.Pseudonyms(value), true
	}
	return []string{value}, false
}

// Target is one deletion: the documents of Index that Query matches.
type Target struct {
	What, Index string // What: logs, traces, dead letters
	Query       []byte
	Count       int64 // found before deleting
	Deleted     int64
	Conflicts   int64
}

// maxTraces bounds the requests whose traces one erasure finds.
const maxTraces = 10000

// Plan counts what e would delete. Traces are those of the requests of
// the matching log documents (at most maxTraces; more is an error, erase
// again after the first run).
func Plan(ctx context.Context, s Store, e Erasure) ([]Target, error) {
	terms := func(field string, values []string) []byte {
		q, _ := json.Marshal(map[string]any{"terms": map[string]any{field: values}})
		return q
	}
	var out []Target
	if e.Logs != "" {
		q := terms(e.Field, e.Values)
		n, err := s.Count(ctx, e.Logs, q)
		if err != nil {
			return nil, err
		}
		out = append(out, Target{What: "logs", Index: e.Logs, Query: q, Count: n})
		if e.Traces != "" && n > 0 {
			if n > maxTraces {
				return nil, fmt.Errorf("%d documents match: more than the %d whose traces one run finds; erase traces in parts (or delete %s by trace.id)", n, maxTraces, e.Traces)
			}
			body, _ := json.Marshal(map[string]any{"size": maxTraces, "_source": []string{"trace.id"}, "query": json.RawMessage(q)})
			res, err := s.Search(ctx, e.Logs, body)
			if err != nil {
				return nil, err
			}
			seen := map[string]bool{}
			var ids []string
			for _, h := range gjson.GetBytes(res, "hits.hits").Array() {
				if id := h.Get("_source.trace.id").String(); id != "" && !seen[id] {
					seen[id] = true
					ids = append(ids, id)
				}
			}
			if len(ids) > 0 {
				tq := terms("trace.id", ids)
				n, err := s.Count(ctx, e.Traces, tq)
				if err != nil {
					return nil, err
				}
				out = append(out, Target{What: "traces", Index: e.Traces, Query: tq, Count: n})
			}
		}
	}
	if e.DeadLetters != "" {
		q := terms("logweave.values", e.Values)
		n, err := s.Count(ctx, e.DeadLetters, q)
		if err != nil {
			return nil, err
		}
		out = append(out, Target{What: "dead letters", Index: e.DeadLetters, Query: q, Count: n})
	}
	return out, nil
}

// Erase deletes the targets Plan found, in order, reporting progress per
// target.
func Erase(ctx context.Context, s Store, targets []Target, progress func(t *Target, deleted, total int64)) error {
	for i := range targets {
		t := &targets[i]
		if t.Count == 0 {
			continue
		}
		var err error
		t.Deleted, t.Conflicts, err = s.DeleteByQuery(ctx, t.Index, t.Query, func(d, total int64) {
			if progress != nil {
				progress(t, d, total)
			}
		})
		if err != nil {
			return fmt.Errorf("%s (%s): %w", t.What, t.Index, err)
		}
	}
	return nil
}
