// Command shipper tails log files and ships their lines to the collector,
// moving its checkpoints only when the collector acknowledged them.
//
//	shipper [run] -config FILE     run (the default subcommand)
//	shipper validate -config FILE  check a configuration and exit
//	shipper health -config FILE    ask the running shipper's /readyz (exit 0 when ready)
package main

import (
	"context"
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
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

var version = "dev"

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	cmd, code := cli.Parse("shipper", args)
	if code >= 0 {
		return code
	}
	sub, log := cmd.Sub, cmd.Log
	configPath := &cmd.Config

	switch sub {
	case "run", "validate", "health":
	case "version":
		fmt.Println(version)
		return 0
	default:
		fmt.Fprintf(os.Stderr, "shipper: unknown subcommand %q (run, validate, health, version)\n", sub)
		return 2
	}
	if *configPath == "" {
		fmt.Fprintln(os.Stderr, "shipper: -config FILE is required")
		return 2
	}
	cfg, err := shipper.Load(*configPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "shipper: invalid configuration:", err)
		return 1
	}
	if sub == "validate" {
		fmt.Println("configuration ok")
		return 0
	}
	if sub == "health" {
		if cfg.HTTP.Listen == "" {
			fmt.Fprintln(os.Stderr, "shipper health: http.listen is not set, so there is nothing to ask")
			return 2
		}
		return cli.Health("shipper", cfg.HTTP.Listen, false)
	}
	if len(cfg.Inputs) == 0 {
		fmt.Fprintln(os.Stderr, "shipper: no inputs configured; nothing to do")
		return 1
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
			log.Error("shipper: http.listen", "error", err)
			return 1
		}
		// Only probes and scrapes come here: a few connections, small and
		// quick requests.
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
			WriteTimeout: 30 * time.Second, IdleTimeout: time.Minute}
		go srv.Serve(netlimit.Listen(ln, 64, nil))
		defer srv.Close()
	}
	log.Info("shipper started", "collector", pipeline.RedactURLs(cfg.Collector.URLs), "inputs", len(cfg.Inputs))
	if err := s.Run(ctx); err != nil {
		log.Error("shipper: stopped with error", "error", err)
		return 1
	}
	log.Info("shipper stopped", "acked", s.Acked())
	return 0
}
