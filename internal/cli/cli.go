// Package cli is the command-line frame both binaries share, shaped like
// Vector's and the OpenTelemetry Collector's: subcommands (run is the
// default), -c/--config, --version, -h listing the subcommands, each
// subcommand with its own flags, flags before or after positional
// arguments, and logs on stderr as text on a terminal or JSON otherwise.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strings"
)

// Version and Commit are set at build time:
//
//	-ldflags "-X github.com/logweave/logweave/internal/cli.Version=1.2.0 -X github.com/logweave/logweave/internal/cli.Commit=0a0a999"
var (
	Version = "0.0.0-dev"
	Commit  = "unknown"
)

// VersionLine is what --version and the version subcommand print.
func VersionLine(program string) string {
	return fmt.Sprintf("%s %s (commit %s, %s %s/%s)", program, Version, Commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// Sub is one subcommand.
type Sub struct {
	Name    string
	Summary string // one line, for -h
	Args    string // its positional arguments for the usage line, e.g. "REQUEST_ID"
	NArgs   int    // how many positional arguments it takes
	// NeedsConfig: the subcommand refuses to run without -c.
	NeedsConfig bool
	// Flags registers the subcommand's own flags.
	Flags func(*flag.FlagSet)
}

// Program describes a binary.
type Program struct {
	Name    string
	Summary string
	Subs    []Sub // the first is the default
}

// Command is a parsed command line.
type Command struct {
	Sub    string   // the subcommand; the program's first when none is given
	Config string   // -c / -config
	Args   []string // positional arguments
	Log    *slog.Logger
}

// Parse reads args (without the program name). It returns an exit code
// other than -1 when the program should exit right away (after -h,
// --version or a usage error, which it has printed).
func (p *Program) Parse(args []string) (*Command, int) {
	return p.parse(args, os.Stdout, os.Stderr)
}

func (p *Program) parse(args []string, stdout, stderr io.Writer) (*Command, int) {
	for _, a := range args {
		if a == "--" {
			break
		}
		switch a {
		case "-h", "-help", "--help":
			if sub := p.subIn(args); sub == nil {
				p.help(stdout)
				return nil, 0
			}
		case "-version", "--version":
			fmt.Fprintln(stdout, VersionLine(p.Name))
			return nil, 0
		}
	}
	sub := p.subIn(args)
	if sub == nil {
		sub = &p.Subs[0]
	} else {
		args = without(args, p.subIndex(args))
	}
	c := &Command{Sub: sub.Name}
	fs, logLevel, logFormat := p.flags(sub, &c.Config)
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			p.subHelp(stdout, sub, fs)
			return nil, 0
		}
		if err != nil {
			fmt.Fprintf(stderr, "%s %s: %v (see %s %s -h)\n", p.Name, sub.Name, err, p.Name, sub.Name)
			return nil, 2
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		c.Args = append(c.Args, args[0])
		args = args[1:]
	}
	if p.subIn(append([]string{}, c.Args...)) == nil && sub == &p.Subs[0] && len(c.Args) > 0 && sub.NArgs == 0 {
		fmt.Fprintf(stderr, "%s: unknown command %q (commands: %s; see %s -h)\n", p.Name, c.Args[0], p.names(), p.Name)
		return nil, 2
	}
	if len(c.Args) != sub.NArgs {
		usage := p.usage(sub)
		if len(c.Args) > sub.NArgs {
			fmt.Fprintf(stderr, "%s %s: unexpected argument %q (usage: %s)\n", p.Name, sub.Name, c.Args[sub.NArgs], usage)
		} else {
			fmt.Fprintf(stderr, "%s %s: missing %s (usage: %s)\n", p.Name, sub.Name, sub.Args, usage)
		}
		return nil, 2
	}
	if sub.NeedsConfig && c.Config == "" {
		fmt.Fprintf(stderr, "%s %s: -c FILE is required (usage: %s)\n", p.Name, sub.Name, p.usage(sub))
		return nil, 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "%s: -log-level %q: expected debug, info, warn or error\n", p.Name, *logLevel)
		return nil, 2
	}
	opts := &slog.HandlerOptions{Level: level}
	switch *logFormat {
	case "":
		if isTerminal(os.Stderr) {
			c.Log = slog.New(slog.NewTextHandler(os.Stderr, opts))
		} else {
			c.Log = slog.New(slog.NewJSONHandler(os.Stderr, opts))
		}
	case "text":
		c.Log = slog.New(slog.NewTextHandler(os.Stderr, opts))
	case "json":
		c.Log = slog.New(slog.NewJSONHandler(os.Stderr, opts))
	default:
		fmt.Fprintf(stderr, "%s: -log-format %q: expected text or json\n", p.Name, *logFormat)
		return nil, 2
	}
	slog.SetDefault(c.Log)
	return c, -1
}

// flags is sub's flag set: the common flags and its own.
func (p *Program) flags(sub *Sub, config *string) (fs *flag.FlagSet, logLevel, logFormat *string) {
	fs = flag.NewFlagSet(p.Name+" "+sub.Name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(config, "config", "", "configuration file (YAML)")
	fs.StringVar(config, "c", "", "configuration file (YAML), short for -config")
	logLevel = fs.String("log-level", "info", "debug, info, warn or error")
	logFormat = fs.String("log-format", "", "text or json (default: text when stderr is a terminal, else json)")
	if sub.Flags != nil {
		sub.Flags(fs)
	}
	return fs, logLevel, logFormat
}

// subIndex is the index in args of the subcommand's name: the first
// argument that is neither a flag nor a flag's value, when it names a
// subcommand; -1 otherwise.
func (p *Program) subIndex(args []string) int {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return -1
		}
		if strings.HasPrefix(a, "-") && len(a) > 1 {
			name := strings.TrimLeft(a, "-")
			if strings.Contains(name, "=") {
				continue
			}
			if p.takesValue(name) {
				i++
			}
			continue
		}
		for j := range p.Subs {
			if p.Subs[j].Name == a {
				return i
			}
		}
		return -1
	}
	return -1
}

func (p *Program) subIn(args []string) *Sub {
	i := p.subIndex(args)
	if i < 0 {
		return nil
	}
	for j := range p.Subs {
		if p.Subs[j].Name == args[i] {
			return &p.Subs[j]
		}
	}
	return nil
}

// takesValue reports whether any subcommand's flag name is not a boolean.
func (p *Program) takesValue(name string) bool {
	for i := range p.Subs {
		var cfg string
		fs, _, _ := p.flags(&p.Subs[i], &cfg)
		if f := fs.Lookup(name); f != nil {
			b, ok := f.Value.(interface{ IsBoolFlag() bool })
			return !ok || !b.IsBoolFlag()
		}
	}
	return false
}

func (p *Program) names() string {
	n := make([]string, len(p.Subs))
	for i, s := range p.Subs {
		n[i] = s.Name
	}
	return strings.Join(n, ", ")
}

func without(args []string, i int) []string {
	out := append([]string(nil), args[:i]...)
	return append(out, args[i+1:]...)
}

func (p *Program) usage(sub *Sub) string {
	u := p.Name + " " + sub.Name
	if sub.NeedsConfig {
		u += " -c FILE"
	}
	u += " [flags]"
	if sub.Args != "" {
		u += " " + sub.Args
	}
	return u
}

func (p *Program) help(w io.Writer) {
	fmt.Fprintf(w, "%s: %s\n\nUsage: %s [command] [flags]\n\nCommands:\n", p.Name, p.Summary, p.Name)
	for i, s := range p.Subs {
		def := ""
		if i == 0 {
			def = " (the default)"
		}
		fmt.Fprintf(w, "  %-10s %s%s\n", s.Name, s.Summary, def)
	}
	fmt.Fprintf(w, `
Flags of every command:
  -c, -config FILE     configuration file (YAML; ${VAR} and ${VAR:-default} are expanded)
  -log-level LEVEL     debug, info, warn or error (default info)
  -log-format FORMAT   text or json (default: text when stderr is a terminal, else json)
  -version             print the name, version, commit and Go version
  -h                   this help; "%s COMMAND -h" shows a command's own flags
`, p.Name)
}

func (p *Program) subHelp(w io.Writer, sub *Sub, fs *flag.FlagSet) {
	fmt.Fprintf(w, "%s %s: %s\n\nUsage: %s\n\nFlags:\n", p.Name, sub.Name, sub.Summary, p.usage(sub))
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name == "c" {
			return
		}
		name := "-" + f.Name
		if f.Name == "config" {
			name = "-c, -config"
		}
		def := ""
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "0s" {
			def = fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(w, "  %-14s %s%s\n", name, f.Usage, def)
	})
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// ConfigError prints a configuration's problems, one per line, and
// returns the exit code for them.
func ConfigError(w io.Writer, program string, err error) int {
	msg := err.Error()
	if strings.Contains(msg, "\n") {
		fmt.Fprintf(w, "%s: invalid configuration:\n  %s\n", program, strings.ReplaceAll(msg, "\n", "\n  "))
	} else {
		fmt.Fprintf(w, "%s: invalid configuration: %s\n", program, msg)
	}
	return 1
}
