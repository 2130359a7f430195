// Command collector receives events from shippers, parses and normalises
// them, buffers them durably and indexes them into daily Elasticsearch
// indices (or NDJSON files).
//
//	collector [run] -config FILE     run (the default subcommand)
//	collector validate -config FILE  check a configuration and exit
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
)

var version = "dev"

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	sub := "run"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		sub, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("collector "+sub, flag.ContinueOnError)
	configPath := fs.String("config", "", "configuration file (YAML); empty means all defaults")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintln(os.Stderr, "collector: -log-level:", err)
		return 2
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(log)

	cfg := collector.DefaultConfig()
	if *configPath != "" {
		var err error
		if cfg, err = collector.Load(*configPath); err != nil {
			fmt.Fprintln(os.Stderr, "collector: invalid configuration:", err)
			return 1
		}
	}
	switch sub {
	case "validate":
		fmt.Println("configuration ok")
		return 0
	case "run":
	case "version":
		fmt.Println(version)
		return 0
	default:
		fmt.Fprintf(os.Stderr, "collector: unknown subcommand %q (run, validate, version)\n", sub)
		return 2
	}

	c, err := collector.New(cfg, log)
	if err != nil {
		log.Error("collector: cannot start", "error", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c.Start()
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
