package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/logweave/logweave/collector"
	"github.com/logweave/logweave/filters/privacy"
	"github.com/logweave/logweave/outputs/elasticsearch"
	"github.com/logweave/logweave/pipeline"
)

// erase deletes one data subject's documents (GDPR art. 17): those whose
// field holds the value's pseudonym under any configured key, the dead
// letters that hold it, and the traces of their requests. Without yes it
// prints what it would delete and stops.
func erase(cfg *collector.Config, field, value string, dryRun, yes bool, out io.Writer, log *slog.Logger) int {
	switch {
	case field == "" || value == "":
		fmt.Fprintln(out, "collector erase: -field and -value are required, e.g. -field user.id -value alice@example.com")
		return 2
	case cfg.Privacy == nil:
		fmt.Fprintln(out, "collector erase: the configuration has no privacy: section, so nothing was pseudonymised to erase by")
		return 1
	case len(cfg.Elasticsearch.URLs) == 0:
		fmt.Fprintln(out, "collector erase: elasticsearch.urls is empty; erase deletes from Elasticsearch only")
		return 1
	}
	red, err := privacy.New(*cfg.Privacy)
	if err != nil {
		fmt.Fprintln(out, "collector erase:", err)
		return 1
	}
	values, pseudonymized := red.ErasureValues(field, value)
	if !pseudonymized {
		fmt.Fprintf(out, "note: no privacy.fields rule pseudonymises %s; looking for the value as given\n", field)
	}
	es, err := elasticsearch.New(cfg.Elasticsearch, log)
	if err != nil {
		fmt.Fprintln(out, "collector erase:", err)
		return 1
	}
	e := privacy.Erasure{Field: field, Values: values,
		Logs:        pipeline.PatternPrefix(cfg.Elasticsearch.Index) + "*",
		DeadLetters: pipeline.PatternPrefix(cfg.Elasticsearch.DeadLetterIndex) + "*"}
	if cfg.Correlation.TracesIndex != "" {
		e.Traces = pipeline.PatternPrefix(cfg.Correlation.TracesIndex) + "*"
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	targets, err := privacy.Plan(ctx, es, e)
	if err != nil {
		fmt.Fprintln(out, "collector erase:", err)
		return 1
	}
	// The audit event names the pseudonyms, never the value.
	audit := []any{"event.action", "privacy-erase", "field", field}
	if pseudonymized {
		audit = append(audit, "pseudonyms", strings.Join(values, ","))
	}
	var total int64
	for _, t := range targets {
		fmt.Fprintf(out, "%-13s %-28s %d documents\n", t.What, t.Index, t.Count)
		total += t.Count
	}
	unreachable(out, cfg)
	switch {
	case dryRun:
		fmt.Fprintf(out, "dry run: %d documents would be deleted\n", total)
		return 0
	case total == 0:
		fmt.Fprintln(out, "nothing to delete")
		log.Info("collector erase: nothing found", audit...)
		return 0
	case !yes:
		fmt.Fprintf(out, "%d documents would be deleted; run again with -yes to delete them\n", total)
		return 1
	}
	err = privacy.Erase(ctx, es, targets, func(t *privacy.Target, deleted, of int64) {
		fmt.Fprintf(out, "  %s: %d of %d deleted\n", t.Index, deleted, of)
	})
	var deleted, conflicts int64
	var indices []string
	for _, t := range targets {
		deleted += t.Deleted
		conflicts += t.Conflicts
		if t.Deleted > 0 {
			indices = append(indices, t.Index)
		}
	}
	fmt.Fprintf(out, "deleted %d documents in %s; %d version conflicts\n", deleted, strings.Join(indices, ", "), conflicts)
	audit = append(audit, "deleted", deleted, "conflicts", conflicts, "indices", strings.Join(indices, ","))
	if err != nil {
		fmt.Fprintln(out, "collector erase:", err)
		log.Error("collector erase: failed part way; run it again", append(audit, "error", err)...)
		return 1
	}
	if conflicts > 0 {
		fmt.Fprintln(out, "some documents changed while they were deleted; run erase again to catch them")
	}
	log.Info("collector erase: done", audit...)
	return 0
}

// unreachable says where erase cannot delete.
func unreachable(out io.Writer, cfg *collector.Config) {
	fmt.Fprintln(out, "not reached by erase (what is there was redacted before it was written: pseudonyms, not the value):")
	if len(cfg.Kafka.Brokers) > 0 {
		fmt.Fprintf(out, "  - Kafka topic %s: records expire by the topic's retention.ms\n", cfg.Kafka.Topic)
	}
	if cfg.FileOutput.Path != "" && len(cfg.Elasticsearch.URLs) == 0 {
		fmt.Fprintf(out, "  - the file output in %s\n", cfg.FileOutput.Path)
	}
	fmt.Fprintf(out, "  - the disk buffer in %s: segments are deleted once delivered\n", cfg.Buffer.Path)
	fmt.Fprintln(out, "  - Elasticsearch snapshots, and copies outside Elasticsearch (exports, other consumers)")
}
