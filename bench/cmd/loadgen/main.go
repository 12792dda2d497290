// Command loadgen replays one benchmark scenario against a server that
// implements the durable HTTP API on a loopback address, and prints requests
// per second and latency percentiles.
//
//	loadgen --url http://127.0.0.1:8080 --scenario ratelimit-one --conns 16 --duration 10s
//	loadgen --url http://127.0.0.1:8080 --scenario lock-cycle --ops 100000 --json
//
// Results go to stdout, diagnostics to stderr.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/durableobjects/durable/bench/loadgen"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
		}
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg loadgen.Config
	var asJSON bool
	fs.StringVar(&cfg.BaseURL, "url", "http://127.0.0.1:8080", "server base URL (loopback only)")
	fs.StringVar(&cfg.Token, "token", os.Getenv("DURABLE_TOKEN"), "bearer token [DURABLE_TOKEN]")
	fs.StringVar(&cfg.Scenario, "scenario", "ratelimit-one", "scenario to run (see below)")
	fs.IntVar(&cfg.Conns, "conns", loadgen.DefaultConns, "concurrent keep-alive connections")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measured time (0: bounded by --ops only)")
	fs.Int64Var(&cfg.Ops, "ops", 0, "stop after this many ops (0: bounded by --duration only)")
	fs.DurationVar(&cfg.Warmup, "warmup", time.Second, "unmeasured warmup before measuring")
	fs.Uint64Var(&cfg.Seed, "seed", 0, "seed for random choices (0: random)")
	fs.BoolVar(&asJSON, "json", false, "print the result as JSON")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: loadgen [flags]\n\nexample:\n  loadgen --url http://127.0.0.1:8080 --scenario ratelimit-10k --conns 32 --duration 10s --json\n\nflags:\n")
		fs.PrintDefaults()
		fmt.Fprintf(stderr, "\nscenarios:\n")
		for _, s := range loadgen.Scenarios() {
			fmt.Fprintf(stderr, "  %-15s %s\n", s.Name, s.Description)
		}
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	res, err := loadgen.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		return enc.Encode(res)
	}
	_, err = fmt.Fprint(stdout, res)
	return err
}
