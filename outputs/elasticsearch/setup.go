package elasticsearch

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/tidwall/gjson"

	"github.com/logweave/logweave/pipeline"
)

// Names of what Setup installs.
const (
	LogsTemplate       = "logweave-logs"
	DeadLetterTemplate = "logweave-deadletter"
	ILMPolicy          = "logweave-logs"
)

// LogsTemplateBody is the index template for the daily log indices: ECS
// types for the fields logweave writes, other strings as keyword with
// ignore_above, message as text, a total-fields guard, and the ILM policy
// when retention is set.
func (o *Output) LogsTemplateBody() map[string]any {
	kw := map[string]any{"type": "keyword", "ignore_above": 1024}
	settings := map[string]any{
		"number_of_shards":                 o.cfg.Shards,
		"number_of_replicas":               o.cfg.Replicas,
		"index.mapping.total_fields.limit": o.cfg.TotalFieldsLimit,
		"index.refresh_interval":           "5s",
	}
	if o.cfg.RetentionDays > 0 {
		settings["index.lifecycle.name"] = ILMPolicy
	}
	return map[string]any{
		"index_patterns": []string{pipeline.PatternPrefix(o.cfg.Index) + "*"},
		"priority":       200,
		"_meta":          map[string]any{"managed_by": "logweave"},
		"template": map[string]any{
			"settings": settings,
			"mappings": map[string]any{
				"dynamic_templates": []any{
					map[string]any{"strings_as_keyword": map[string]any{
						"match_mapping_type": "string",
						"mapping":            kw,
					}},
				},
				"properties": map[string]any{
					"@timestamp": map[string]any{"type": "date"},
					"message":    map[string]any{"type": "text"},
					"tags":       kw,
					"log": map[string]any{"properties": map[string]any{
						"level":  kw,
						"offset": map[string]any{"type": "long"},
						"file":   map[string]any{"properties": map[string]any{"path": kw}},
					}},
					"service": map[string]any{"properties": map[string]any{"name": kw}},
					"host":    map[string]any{"properties": map[string]any{"name": kw}},
					"trace":   map[string]any{"properties": map[string]any{"id": kw}},
					"http": map[string]any{"properties": map[string]any{
						"request": map[string]any{"properties": map[string]any{"id": kw}},
					}},
					"event": map[string]any{"properties": map[string]any{
						"id":       kw,
						"original": map[string]any{"type": "text", "index": false},
					}},
				},
			},
		},
	}
}

// DeadLetterTemplateBody maps the dead-letter index strictly enough that a
// rejected document can never be rejected again for its content: the
// original is stored as an unindexed string, and no field is added
// dynamically.
func (o *Output) DeadLetterTemplateBody() map[string]any {
	kw := map[string]any{"type": "keyword", "ignore_above": 1024}
	return map[string]any{
		"index_patterns": []string{pipeline.PatternPrefix(o.cfg.DeadLetterIndex) + "*"},
		"priority":       210,
		"_meta":          map[string]any{"managed_by": "logweave"},
		"template": map[string]any{
			"settings": map[string]any{"number_of_shards": 1, "number_of_replicas": o.cfg.Replicas},
			"mappings": map[string]any{
				"dynamic": false,
				"properties": map[string]any{
					"@timestamp": map[string]any{"type": "date"},
					"event":      map[string]any{"properties": map[string]any{"original": map[string]any{"type": "text", "index": false}}},
					"error": map[string]any{"properties": map[string]any{
						"type":    kw,
						"message": map[string]any{"type": "text"},
					}},
					"logweave": map[string]any{"properties": map[string]any{
						"target_index": kw,
						"status":       map[string]any{"type": "integer"},
						"event_id":     kw,
						"values":       kw, // the original's values, for collector erase
					}},
				},
			},
		},
	}
}

// Template is an index template another component asks Setup to install
// (the correlator's, for the trace documents): a name, the Logstash-style
// index pattern it applies to, and its mappings; Setup adds the shards,
// replicas and ILM policy the output's configuration says.
type Template struct {
	Name     string
	Pattern  string
	Mappings map[string]any
}

func (o *Output) templateBody(t Template) map[string]any {
	settings := map[string]any{"number_of_shards": 1, "number_of_replicas": o.cfg.Replicas}
	if o.cfg.RetentionDays > 0 {
		settings["index.lifecycle.name"] = ILMPolicy
	}
	return map[string]any{
		"index_patterns": []string{pipeline.PatternPrefix(t.Pattern) + "*"},
		"priority":       200,
		"_meta":          map[string]any{"managed_by": "logweave"},
		"template":       map[string]any{"settings": settings, "mappings": t.Mappings},
	}
}

// ILMPolicyBody deletes indices retention_days after they were created.
func (o *Output) ILMPolicyBody() map[string]any {
	return map[string]any{"policy": map[string]any{
		"_meta": map[string]any{"managed_by": "logweave"},
		"phases": map[string]any{
			"hot":    map[string]any{"actions": map[string]any{}},
			"delete": map[string]any{"min_age": fmt.Sprintf("%dd", o.cfg.RetentionDays), "actions": map[string]any{"delete": map[string]any{}}},
		},
	}}
}

// Setup installs the ILM policy (when retention_days is set) and the index
// templates. It is idempotent: the collector runs it at start, and
// `collector setup` runs it on demand.
func (o *Output) Setup(ctx context.Context) error {
	if o.cfg.RetentionDays > 0 {
		body, _ := json.Marshal(o.ILMPolicyBody())
		if err := o.do(ctx, esapi.ILMPutLifecycleRequest{Policy: ILMPolicy, Body: bytes.NewReader(body)}); err != nil {
			return fmt.Errorf("ILM policy %s: %w", ILMPolicy, err)
		}
	}
	templates := map[string]map[string]any{LogsTemplate: o.LogsTemplateBody(), DeadLetterTemplate: o.DeadLetterTemplateBody()}
	for _, t := range o.Templates {
		templates[t.Name] = o.templateBody(t)
	}
	for name, tpl := range templates {
		body, _ := json.Marshal(tpl)
		if err := o.do(ctx, esapi.IndicesPutIndexTemplateRequest{Name: name, Body: bytes.NewReader(body)}); err != nil {
			return fmt.Errorf("index template %s: %w", name, err)
		}
	}
	return nil
}

func (o *Output) do(ctx context.Context, req esapi.Request) error {
	res, err := req.Do(ctx, o.client)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.IsError() {
		return fmt.Errorf("%s", res.String())
	}
	return nil
}

// Search runs a _search on index (a pattern) and returns the response body.
func (o *Output) Search(ctx context.Context, index string, body []byte) ([]byte, error) {
	res, err := esapi.SearchRequest{Index: []string{index}, Body: bytes.NewReader(body)}.Do(ctx, o.client)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	if res.IsError() {
		return nil, fmt.Errorf("search %s: %s", index, out)
	}
	return out, nil
}

// Count counts the documents of index (a pattern) that query (a query
// clause, JSON) matches.
func (o *Output) Count(ctx context.Context, index string, query []byte) (int64, error) {
	res, err := esapi.CountRequest{Index: []string{index}, Body: bytes.NewReader([]byte(`{"query":` + string(query) + `}`)),
		AllowNoIndices: esapi.BoolPtr(true), IgnoreUnavailable: esapi.BoolPtr(true)}.Do(ctx, o.client)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	if err != nil {
		return 0, err
	}
	if res.IsError() {
		return 0, fmt.Errorf("count %s: %s", index, out)
	}
	return gjson.GetBytes(out, "count").Int(), nil
}

// DeleteByQuery deletes the documents of index (a pattern) that query
// matches, sliced (slices=auto), going on past version conflicts, as a
// task it polls: progress is called with what is done so far.
func (o *Output) DeleteByQuery(ctx context.Context, index string, query []byte, progress func(deleted, total int64)) (deleted, conflicts int64, err error) {
	res, err := esapi.DeleteByQueryRequest{Index: []string{index}, Body: bytes.NewReader([]byte(`{"query":` + string(query) + `}`)),
		Slices: "auto", Conflicts: "proceed", Refresh: esapi.BoolPtr(true), WaitForCompletion: esapi.BoolPtr(false),
		AllowNoIndices: esapi.BoolPtr(true), IgnoreUnavailable: esapi.BoolPtr(true)}.Do(ctx, o.client)
	if err != nil {
		return 0, 0, err
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return 0, 0, err
	}
	if res.IsError() {
		return 0, 0, fmt.Errorf("delete_by_query %s: %s", index, body)
	}
	task := gjson.GetBytes(body, "task").String()
	if task == "" {
		return 0, 0, fmt.Errorf("delete_by_query %s: no task in %s", index, body)
	}
	for {
		res, err := esapi.TasksGetRequest{TaskID: task}.Do(ctx, o.client)
		if err != nil {
			return deleted, conflicts, err
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			return deleted, conflicts, err
		}
		if res.IsError() {
			return deleted, conflicts, fmt.Errorf("task %s: %s", task, body)
		}
		st := gjson.GetBytes(body, "task.status")
		deleted, conflicts = st.Get("deleted").Int(), st.Get("version_conflicts").Int()
		if progress != nil {
			progress(deleted, st.Get("total").Int())
		}
		if gjson.GetBytes(body, "completed").Bool() {
			if f := gjson.GetBytes(body, "response.failures"); len(f.Array()) > 0 {
				return deleted, conflicts, fmt.Errorf("delete_by_query %s: %d failures, the first: %s", index, len(f.Array()), f.Array()[0].Raw)
			}
			return deleted, conflicts, nil
		}
		select {
		case <-ctx.Done():
			return deleted, conflicts, fmt.Errorf("task %s still running (GET _tasks/%s to follow it): %w", task, task, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// Lookup returns the documents in the indices of pattern (Logstash-style)
// whose field holds one of values, by that value, with their versions
// (pipeline.Lookup).
func (o *Output) Lookup(ctx context.Context, pattern, field string, values []string) (map[string]pipeline.StoredDoc, error) {
	q, _ := json.Marshal(map[string]any{"size": len(values), "seq_no_primary_term": true,
		"query": map[string]any{"terms": map[string]any{field: values}}})
	res, err := o.Search(ctx, pipeline.PatternPrefix(pattern)+"*", q)
	if err != nil {
		return nil, err
	}
	out := map[string]pipeline.StoredDoc{}
	for _, h := range gjson.GetBytes(res, "hits.hits").Array() {
		src := h.Get("_source")
		out[src.Get(field).String()] = pipeline.StoredDoc{Doc: []byte(src.Raw), Index: h.Get("_index").String(),
			SeqNo: h.Get("_seq_no").Int(), PrimaryTerm: h.Get("_primary_term").Int()}
	}
	return out, nil
}
