// Command collector receives events from shippers, parses and normalises
// them, buffers them durably and indexes them into daily Elasticsearch
// indices (or NDJSON files).
//
//	collector [run] -c FILE [-role all|ingest|index]
//	                                 run (the default subcommand); with Kafka,
//	                                 ingest and index can run as separate processes
//	collector validate -c FILE  check a configuration and exit
//	collector setup -c FILE     install index templates (and the ILM policy)
//	                                 in Elasticsearch, and, with kibana.url, the Kibana
//	                                 saved objects, waiting up to -wait for both
//	collector trace -c FILE [-o text|json] REQUEST_ID
//	                                 print one request's trace as a waterfall, from
//	                                 Elasticsearch or, without it, the file output
//	collector traces -c FILE [-errors] [-slowest N] [-since 1h] [-limit 20]
//	                                 list traces, latest (or slowest) first
//	collector erase -c FILE -field user.id -value V [-dry-run] [-yes]
//	                                 delete one person's documents (GDPR art. 17)
//	collector health -c FILE    ask the running collector's /readyz (exit 0 when
//	                                 ready): a container health check without a shell
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/logweave/logweave/collector"
	"github.com/logweave/logweave/deploy/kibana"
	"github.com/logweave/logweave/internal/cli"
	"github.com/logweave/logweave/outputs/elasticsearch"
	"github.com/logweave/logweave/pipeline"
	"github.com/logweave/logweave/traceview"
)

var program = &cli.Program{Name: "collector",
	Summary: "receives events from shippers and GELF, correlates requests, buffers and indexes them into Elasticsearch (or files)"}

// version and commit are set at build time (-X main.version=… -X main.commit=…).
var version = "0.0.0-dev"
var commit = "unknown"

func main() {
	cli.Version, cli.Commit = version, commit
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	var role, format, pprofAddr string
	var wait, since time.Duration
	var errorsOnly, dryRun, yes bool
	var slowest, limit int
	var eraseField, eraseValue string
	program.Subs = []cli.Sub{
		{Name: "run", Summary: "run the collector", Flags: func(fs *flag.FlagSet) {
			fs.StringVar(&role, "role", collector.RoleAll, "all, ingest or index (ingest and index need Kafka)")
			fs.StringVar(&pprofAddr, "pprof", "", "serve Go's net/http/pprof profiles on this address, e.g. 127.0.0.1:6060 (off by default)")
		}},
		{Name: "validate", Summary: "check a configuration as run does (keys, values, files, directories) and exit", NeedsConfig: true},
		{Name: "setup", Summary: "install the index templates, ILM policy and Kibana saved objects", NeedsConfig: true, Flags: func(fs *flag.FlagSet) {
			fs.DurationVar(&wait, "wait", 2*time.Minute, "how long to wait for Elasticsearch and Kibana")
		}},
		{Name: "trace", Summary: "print one request's trace as a waterfall", Args: "REQUEST_ID", NArgs: 1, Flags: func(fs *flag.FlagSet) {
			fs.StringVar(&format, "o", "text", "text (a waterfall) or json")
		}},
		{Name: "traces", Summary: "list traces, latest (or slowest) first", Flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&errorsOnly, "errors", false, "only requests with an error")
			fs.IntVar(&slowest, "slowest", 0, "the N slowest instead of the latest")
			fs.DurationVar(&since, "since", 0, "only requests that started within this long, e.g. 1h")
			fs.IntVar(&limit, "limit", 20, "how many")
		}},
		{Name: "erase", Summary: "delete one person's documents (GDPR art. 17), found by the pseudonyms of a value", NeedsConfig: true, Flags: func(fs *flag.FlagSet) {
			fs.StringVar(&eraseField, "field", "", "the field that names the person, as pseudonymised, e.g. user.id")
			fs.StringVar(&eraseValue, "value", "", "its value before pseudonymisation, e.g. alice@example.com")
			fs.BoolVar(&dryRun, "dry-run", false, "print what would be deleted and stop")
			fs.BoolVar(&yes, "yes", false, "delete; without it erase prints what it would delete and stops")
		}},
		{Name: "health", Summary: "ask the running collector's /readyz; exit 0 when ready (a container health check)"},
		{Name: "version", Summary: "print the name, version, commit and Go version"},
	}
	cmd, code := program.Parse(args)
	if code >= 0 {
		return code
	}
	sub, log := cmd.Sub, cmd.Log
	if sub == "version" {
		fmt.Println(cli.VersionLine("collector"))
		return 0
	}
	cfg, err := collector.Load(cmd.Config)
	if err != nil {
		return cli.ConfigError(os.Stderr, "collector", err)
	}
	switch sub {
	case "validate":
		fmt.Printf("%s: configuration ok\n", cmd.Config)
		return 0
	case "run":
		if role != collector.RoleAll && role != collector.RoleIngest && role != collector.RoleIndex {
			fmt.Fprintf(os.Stderr, "collector run: -role %q: expected all, ingest or index\n", role)
			return 2
		}
	case "setup":
		return setup(cfg, wait, log)
	case "trace":
		if format != "text" && format != "json" {
			fmt.Fprintf(os.Stderr, "collector trace: -o %q: expected text or json\n", format)
			return 2
		}
		return trace(cfg, cmd.Args[0], format, log)
	case "traces":
		return traces(cfg, traceview.ListOptions{Errors: errorsOnly, Since: since, Slowest: slowest, Limit: limit, Now: time.Now()}, log)
	case "erase":
		return erase(cfg, eraseField, eraseValue, dryRun, yes, os.Stdout, log)
	case "health":
		return cli.Health("collector", cfg.HTTP.Listen, cfg.HTTP.TLS.Cert != "")
	}

	c, err := collector.NewRole(cfg, role, log)
	if err != nil {
		log.Error("collector: cannot start", "error", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c.Start()
	cli.ServePprof(pprofAddr, log)
	go cli.Summarize(ctx, log, cfg.SummaryInterval, c.Gatherer(), []cli.Stat{
		{Key: "received", Metric: "logweave_events_received_total", Delta: true},
		{Key: "delivered", Metric: "logweave_output_events_total", Delta: true},
		{Key: "dead_lettered", Metric: "logweave_elasticsearch_dead_lettered_total", Delta: true},
		{Key: "output_failures", Metric: "logweave_indexer_output_failures_total", Delta: true},
		{Key: "buffer_pending_bytes", Metric: "logweave_buffer_pending_bytes"},
		{Key: "kafka_lag", Metric: "logweave_kafka_consumer_lag"},
		{Key: "traces_open", Metric: "logweave_traces_open"},
	})
	<-ctx.Done()
	log.Info("collector: shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Shutdown(sctx); err != nil {
		log.Error("collector: shutdown", "error", err)
		return 1
	}
	return 0
}

// setup installs the Elasticsearch templates, retrying until the cluster
// answers or wait runs out (so a one-shot container can start with it).
func setup(cfg *collector.Config, wait time.Duration, log *slog.Logger) int {
	if len(cfg.Elasticsearch.URLs) == 0 {
		fmt.Fprintln(os.Stderr, "collector setup: elasticsearch.urls is empty; nothing to set up")
		return 1
	}
	o, err := collector.NewElasticsearch(cfg, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "collector setup:", err)
		return 1
	}
	deadline := time.Now().Add(wait)
	if err := retryUntil(deadline, "elasticsearch", log, o.Setup); err != nil {
		fmt.Fprintln(os.Stderr, "collector setup:", err)
		return 1
	}
	fmt.Printf("installed index templates %s, %s", elasticsearch.LogsTemplate, elasticsearch.DeadLetterTemplate)
	for _, t := range o.Templates {
		fmt.Printf(", %s", t.Name)
	}
	if cfg.Elasticsearch.RetentionDays > 0 {
		fmt.Printf(" and ILM policy %s (delete after %d days)", elasticsearch.ILMPolicy, cfg.Elasticsearch.RetentionDays)
	}
	fmt.Println()
	if cfg.Kibana.URL == "" {
		return 0
	}
	objects := kibana.Objects(pipeline.PatternPrefix(cfg.Elasticsearch.Index), pipeline.PatternPrefix(cfg.Correlation.TracesIndex))
	if err := retryUntil(deadline, "kibana", log, func(ctx context.Context) error { return kibana.Import(ctx, cfg.Kibana, objects) }); err != nil {
		fmt.Fprintln(os.Stderr, "collector setup: kibana:", err)
		return 1
	}
	fmt.Println("imported the Kibana saved objects (data views, Request trace, Error traces, Slowest traces, dashboard \"logweave: requests\")")
	return 0
}

// retryUntil calls f (30 s each) until it succeeds or deadline passes, so
// a one-shot setup can start together with the services it sets up.
func retryUntil(deadline time.Time, what string, log *slog.Logger, f func(context.Context) error) error {
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := f(ctx)
		cancel()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		log.Info("setup: waiting for "+what, "error", err)
		time.Sleep(2 * time.Second)
	}
}

// trace prints one request's trace: from Elasticsearch when it is
// configured, else from the file output.
func trace(cfg *collector.Config, id, format string, log *slog.Logger) int {
	var v *traceview.View
	var err error
	if len(cfg.Elasticsearch.URLs) > 0 {
		var o *elasticsearch.Output
		if o, err = elasticsearch.New(cfg.Elasticsearch, log); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			v, err = traceview.FromElasticsearch(ctx, o, cfg.Elasticsearch.Index, cfg.Correlation.TracesIndex, id)
			cancel()
		}
	} else {
		v, err = traceview.FromFiles(cfg.FileOutput.Path, cfg.Elasticsearch.Index, cfg.Correlation.TracesIndex, id)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "collector trace %s: %v\n", id, err)
		return 1
	}
	if format == "json" {
		err = v.WriteJSON(os.Stdout)
	} else {
		err = v.Render(os.Stdout)
	}
	if err != nil {
		return 1
	}
	return 0
}

// traces lists traces from Elasticsearch or the file output.
func traces(cfg *collector.Config, o traceview.ListOptions, log *slog.Logger) int {
	if cfg.Correlation.TracesIndex == "" {
		fmt.Fprintln(os.Stderr, "collector traces: correlation.traces_index is empty: no traces are written")
		return 1
	}
	var docs [][]byte
	var err error
	if len(cfg.Elasticsearch.URLs) > 0 {
		var es *elasticsearch.Output
		if es, err = elasticsearch.New(cfg.Elasticsearch, log); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			docs, err = traceview.ListFromElasticsearch(ctx, es, cfg.Correlation.TracesIndex, o)
			cancel()
		}
	} else {
		docs, err = traceview.ListFromFiles(cfg.FileOutput.Path, cfg.Correlation.TracesIndex, o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "collector traces:", err)
		return 1
	}
	if err := traceview.RenderList(os.Stdout, docs); err != nil {
		return 1
	}
	return 0
}
