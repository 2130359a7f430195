// Command collector receives events from shippers, parses and normalises
// them, buffers them durably and indexes them into daily Elasticsearch
// indices (or NDJSON files).
//
//	collector [run] -config FILE     run (the default subcommand)
//	collector validate -config FILE  check a configuration and exit
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/logweave/logweave/collector"
	"github.com/logweave/logweave/internal/cli"
)

var version = "dev"

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	cmd, code := cli.Parse("collector", args)
	if code >= 0 {
		return code
	}
	sub, log := cmd.Sub, cmd.Log
	configPath := &cmd.Config

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
