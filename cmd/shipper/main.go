// Command shipper tails log files and ships their lines to the collector,
// moving its checkpoints only when the collector acknowledged them.
//
//	shipper [run] -c FILE     run (the default subcommand)
//	shipper validate -c FILE  check a configuration as run does and exit
//	shipper health -c FILE    ask the running shipper's /readyz (exit 0 when ready)
//	shipper version           print the name, version, commit and Go version
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/logweave/logweave/internal/cli"
	"github.com/logweave/logweave/internal/netlimit"
	"github.com/logweave/logweave/pipeline"
	"github.com/logweave/logweave/shipper"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

var pprofAddr string

var program = &cli.Program{Name: "shipper",
	Summary: "tails log files and receives GELF, syslog and Fluent Forward on a node, and ships every line to the collector, at least once",
	Subs: []cli.Sub{
		{Name: "run", Summary: "run the shipper", NeedsConfig: true, Flags: func(fs *flag.FlagSet) {
			fs.StringVar(&pprofAddr, "pprof", "", "serve Go's net/http/pprof profiles on this address, e.g. 127.0.0.1:6061 (off by default)")
		}},
		{Name: "validate", Summary: "check a configuration as run does (keys, values, files, directories) and exit", NeedsConfig: true},
		{Name: "health", Summary: "ask the running shipper's /readyz; exit 0 when ready (a container health check)", NeedsConfig: true},
		{Name: "version", Summary: "print the name, version, commit and Go version"},
	}}

// version and commit are set at build time (-X main.version=… -X main.commit=…).
var version = "0.0.0-dev"
var commit = "unknown"

func main() {
	cli.Version, cli.Commit = version, commit
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	cmd, code := program.Parse(args)
	if code >= 0 {
		return code
	}
	sub, log := cmd.Sub, cmd.Log
	if sub == "version" {
		fmt.Println(cli.VersionLine("shipper"))
		return 0
	}
	cfg, err := shipper.Load(cmd.Config)
	if err != nil {
		return cli.ConfigError(os.Stderr, "shipper", err)
	}
	if sub == "validate" {
		fmt.Printf("%s: configuration ok\n", cmd.Config)
		return 0
	}
	if sub == "health" {
		if cfg.HTTP.Listen == "" {
			fmt.Fprintln(os.Stderr, "shipper health: http.listen is not set, so there is nothing to ask")
			return 2
		}
		return cli.Health("shipper", cfg.HTTP.Listen, false)
	}
	s, err := shipper.New(cfg, log)
	if err != nil {
		log.Error("shipper: cannot start", "error", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if cfg.HTTP.Listen != "" {
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.Handler())
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
		mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
			if ok, why := s.Ready(); !ok {
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprintln(w, "not ready:", why)
				return
			}
			fmt.Fprintln(w, "ready")
		})
		ln, err := net.Listen("tcp", cfg.HTTP.Listen)
		if err != nil {
			log.Error("shipper: cannot start: http.listen", "error", err)
			return 1
		}
		// Only probes and scrapes come here: a few connections, small and
		// quick requests.
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
			WriteTimeout: 30 * time.Second, IdleTimeout: time.Minute}
		go srv.Serve(netlimit.Listen(ln, 64, nil))
		defer srv.Close()
	}
	cli.ServePprof(pprofAddr, log)
	log.Info("shipper started", "collector", pipeline.RedactURLs(cfg.Collector.URLs), "inputs", len(cfg.Inputs))
	read := func() float64 {
		return cli.MetricSum(prometheus.DefaultGatherer, "logweave_tail_lines_read_total", "logweave_shipper_spooled_total")
	}
	go cli.Summarize(ctx, log, cfg.SummaryInterval, prometheus.DefaultGatherer, []cli.Stat{
		{Key: "lines_read", Metric: "logweave_tail_lines_read_total", Delta: true},
		{Key: "received", Metric: "logweave_shipper_spooled_total", Delta: true},
		{Key: "sent", Metric: "logweave_shipper_events_sent_total", Delta: true},
		{Key: "acked", Func: func() float64 { return float64(s.Acked()) }, Delta: true},
		{Key: "unacked", Func: func() float64 { return max(0, read()-float64(s.Acked())) }},
		{Key: "files_open", Metric: "logweave_tail_files_open"},
		{Key: "spool_bytes", Metric: "logweave_shipper_spool_bytes"},
	})
	if err := s.Run(ctx); err != nil {
		log.Error("shipper: stopped with error", "error", err)
		return 1
	}
	log.Info("shipper stopped", "acked", s.Acked())
	return 0
}
