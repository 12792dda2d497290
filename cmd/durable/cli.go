package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
)

// Main is the CLI. Tests call Run directly.
type Main struct {
	Stdout, Stderr io.Writer
	// Ready, if set, is called with the server's address once it listens.
	Ready func(addr string)
}

type command struct {
	summary string
	run     func(ctx context.Context, m *Main, args []string) error
}

var commands = map[string]command{}

func register(name, summary string, run func(ctx context.Context, m *Main, args []string) error) {
	commands[name] = command{summary, run}
}

const usage = `durable runs Durable Objects: named, single-threaded objects that each own
a SQLite database.

Usage:
  durable <command> [flags]

Commands:
%s
Run "durable <command> --help" for a command's flags and an example.
`

// Run runs the command named by args[0] and returns the exit code.
func (m *Main) Run(ctx context.Context, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		m.usage()
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(m.Stderr, "durable: unknown command %q\n\n", args[0])
		m.usage()
		return 2
	}
	if err := cmd.run(ctx, m, args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(m.Stderr, "durable %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

func (m *Main) usage() {
	var list string
	for _, name := range []string{"serve", "bench"} {
		if c, ok := commands[name]; ok {
			list += fmt.Sprintf("  %-8s %s\n", name, c.summary)
		}
	}
	fmt.Fprintf(m.Stderr, usage, list)
}

// newFlagSet returns a flag set whose --help prints the command's usage
// and example to m.Stderr.
func (m *Main) newFlagSet(name, synopsis, example string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(m.Stderr, "Usage: durable %s [flags]\n\n%s\n\nFlags:\n", name, synopsis)
		fs.PrintDefaults()
		if example != "" {
			fmt.Fprintf(m.Stderr, "\nExample:\n%s\n", example)
		}
	}
	return fs
}
