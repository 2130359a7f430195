// Package cli is the command-line frame both binaries share: a subcommand,
// -config and -log-level flags, and JSON logs on stderr.
package cli

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
)

// Command is a parsed command line.
type Command struct {
	Sub    string   // the subcommand; "run" when none is given
	Config string   // -config
	Args   []string // what follows the flags
	Log    *slog.Logger
}

// Parse reads args (without the program name). It returns an exit code
// other than -1 when the program should exit right away.
// extra, when given, registers the program's own flags.
func Parse(program string, args []string, extra ...func(*flag.FlagSet)) (*Command, int) {
	c := &Command{Sub: "run"}
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		c.Sub, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet(program+" "+c.Sub, flag.ContinueOnError)
	fs.StringVar(&c.Config, "config", "", "configuration file (YAML)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	for _, f := range extra {
		f(fs)
	}
	if err := fs.Parse(args); err != nil {
		return nil, 2
	}
	c.Args = fs.Args()
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(os.Stderr, "%s: -log-level: %v\n", program, err)
		return nil, 2
	}
	c.Log = slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(c.Log)
	return c, -1
}
