package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime/pprof"
	"slices"
	"strings"

	"github.com/durableobjects/durable/internal/corebench"
)

func init() { register("bench", "measure the runtime against baselines in one run", runBench) }

const benchSynopsis = `Bench measures the core runtime and prints each figure next to a baseline
measured in the same run, and the project's targets (docs/benchmarks.md):

  one     64 callers on one object: group commit vs one fsync'd commit per
          event vs a bare SQLite upsert loop
  many    256 callers on 1,000 objects: barrier with syncfs, with fdatasync,
          and per-object fsync
  create  new objects per second (first write creates the file)
  cold    p50/p99 of the first call to an evicted object

The configurations of a scenario are open side by side and take turns under
load (--rounds windows each), so a noisy neighbour hits them alike. The
table goes to stdout, progress to stderr.`

const benchExample = `  durable bench
  durable bench --only one,many --duration 5s --json > bench.json
  durable bench --only cold --cpuprofile cold.pprof`

func runBench(ctx context.Context, m *Main, args []string) error {
	fs := m.newFlagSet("bench", benchSynopsis, benchExample)
	duration := fs.Duration("duration", corebench.DefaultDuration, "measured time of each configuration (2-3 per scenario)")
	rounds := fs.Int("rounds", corebench.DefaultRounds, "alternating windows the duration is split into")
	warmup := fs.Duration("warmup", corebench.DefaultWarmup, "load before each window, not counted")
	dir := fs.String("dir", "", "where to put the data (a temporary directory inside it, removed after); default $TMPDIR")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	only := fs.String("only", "", "comma-separated scenarios to run: "+strings.Join(corebench.Scenarios, ","))
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var scenarios []string
	if *only != "" {
		scenarios = strings.Split(*only, ",")
	}
	for _, s := range scenarios {
		if !slices.Contains(corebench.Scenarios, s) {
			return fmt.Errorf("--only: unknown scenario %q (have %s)", s, strings.Join(corebench.Scenarios, ","))
		}
	}

	root, err := os.MkdirTemp(*dir, "durable-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	where := "a different filesystem from the working directory"
	if wd, err := os.Getwd(); err == nil && corebench.SameDevice(root, wd) {
		where = "the working directory's filesystem"
	}
	fmt.Fprintf(m.Stderr, "durable bench: data in %s (%s, %s)\n", root, corebench.FSType(root), where)

	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}

	cfg := corebench.Config{Dir: root, Duration: *duration, Rounds: *rounds, Warmup: *warmup, Log: m.Stderr}
	report, err := corebench.Run(ctx, cfg, scenarios)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(m.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(report)
	}
	return corebench.WriteText(m.Stdout, report)
}
