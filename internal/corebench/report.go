package corebench

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Scenarios are the names Run accepts, in the order it runs them.
var Scenarios = []string{"one", "many", "create", "cold"}

// Report is the outcome of a run of the suite. Scenarios not run are nil.
type Report struct {
	Env    Env           `json:"env"`
	One    *OneResult    `json:"one,omitempty"`
	Many   *ManyResult   `json:"many,omitempty"`
	Create *CreateResult `json:"create,omitempty"`
	Cold   *ColdResult   `json:"cold,omitempty"`
	Checks []Check       `json:"checks"`
	Notes  []string      `json:"notes,omitempty"`
}

// Check is one of design.md's targets and whether the run met it.
type Check struct {
	Name   string  `json:"name"`
	Value  float64 `json:"value"`
	Unit   string  `json:"unit"` // "x" (a ratio), "/s" or "ms"
	Target string  `json:"target"`
	Met    bool    `json:"met"`
}

// Run runs the scenarios named in only (all when empty), in the order of
// Scenarios, and checks the results against the design's targets.
func Run(ctx context.Context, cfg Config, only []string) (*Report, error) {
	for _, s := range only {
		if !slices.Contains(Scenarios, s) {
			return nil, fmt.Errorf("unknown scenario %q (have %s)", s, strings.Join(Scenarios, ", "))
		}
	}
	if cfg.Dir == "" {
		return nil, fmt.Errorf("corebench: Config.Dir is required")
	}
	cfg = cfg.withDefaults()
	want := func(s string) bool { return len(only) == 0 || slices.Contains(only, s) }
	r := &Report{Env: environment(cfg)}
	steps := []struct {
		name string
		run  func() error
	}{
		{"one", func() (err error) { r.One, err = One(ctx, cfg); return err }},
		{"many", func() (err error) { r.Many, err = Many(ctx, cfg); return err }},
		{"create", func() (err error) { r.Create, err = Create(ctx, cfg); return err }},
		{"cold", func() (err error) { r.Cold, err = Cold(ctx, cfg); return err }},
	}
	for _, s := range steps {
		if !want(s.name) {
			continue
		}
		start := time.Now()
		if err := s.run(); err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
		cfg.logf("%s: done in %.1fs", s.name, time.Since(start).Seconds())
	}
	r.Env.LoadEnd = LoadAverage()
	r.check()
	return r, nil
}

// check fills in Checks and Notes from design.md's targets.
func (r *Report) check() {
	ratio := func(name string, v, target float64) {
		r.Checks = append(r.Checks, Check{Name: name, Value: v, Unit: "x", Target: fmt.Sprintf(">= %gx", target), Met: v >= target})
	}
	if o := r.One; o != nil {
		ratio("one object: group commit / bare SQLite loop", o.DurableVsBare, 0.7)
		ratio("one object: group commit / one commit per event", o.DurableVsPerEvent, 4)
	}
	if m := r.Many; m != nil {
		ratio(fmt.Sprintf("%d objects: barrier (syncfs) / per-object fsync", m.Objects), m.SyncfsVsPerObject, 4)
		faster, slower, x := "syncfs", "fdatasync", m.SyncfsVsFdatasync
		if x < 1 {
			faster, slower, x = slower, faster, 1/x
		}
		r.Notes = append(r.Notes, fmt.Sprintf("barrier method: %s was %.2fx as fast as %s (%.0f vs %.0f events/s; fdatasync / per-object fsync = %.2fx)",
			faster, x, slower, max(m.Syncfs.PerSec, m.Fdatasync.PerSec), min(m.Syncfs.PerSec, m.Fdatasync.PerSec), m.FdatasyncVsPerObject))
	}
	if c := r.Create; c != nil {
		r.Checks = append(r.Checks, Check{Name: "new objects per second", Value: c.Durable.PerSec, Unit: "/s", Target: ">= 2000/s", Met: c.Durable.PerSec >= 2000})
	}
	if c := r.Cold; c != nil {
		p99 := float64(c.Durable.P99) / float64(time.Millisecond)
		r.Checks = append(r.Checks, Check{Name: "cold activation p99", Value: p99, Unit: "ms", Target: "< 2 ms", Met: c.Durable.P99 < 2*time.Millisecond})
	}
}
