package corebench

import (
	"context"
	"errors"
	"path/filepath"

	"github.com/durableobjects/durable"
)

// OneResult is the one-object scenario: Config.OneCallers callers each
// calling Object.Put on the same object.
type OneResult struct {
	Durable  Throughput `json:"durable"`   // group commit, the runtime's defaults
	PerEvent Throughput `json:"per_event"` // one fsync'd commit per event
	Bare     Throughput `json:"bare"`      // bare SQLite upsert loop, one goroutine

	DurableVsBare     float64 `json:"durable_vs_bare"`
	DurableVsPerEvent float64 `json:"durable_vs_per_event"`
}

// One runs the one-object scenario.
func One(ctx context.Context, cfg Config) (r *OneResult, err error) {
	cfg = cfg.withDefaults()
	cfg.logf("one object, %d callers", cfg.OneCallers)
	dir, remove, err := cfg.scratch("one")
	if err != nil {
		return nil, err
	}
	defer remove()
	modes := []Mode{Syncfs, PerEvent}
	rts, err := openRuntimes([]string{filepath.Join(dir, "syncfs"), filepath.Join(dir, "per-event")}, modes)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, rts.close(cfg)) }()
	var trials []trial
	for i, m := range modes {
		stubs := make([]*durable.Stub, cfg.OneCallers) // a stub per caller
		for c := range stubs {
			stubs[c] = rts.nss[i].GetByName("one")
		}
		if err := Put(ctx, stubs[0]); err != nil { // create the file before measuring
			return nil, err
		}
		trials = append(trials, trial{mode: m.Key, label: m.Label, rt: rts.rts[i], callers: cfg.OneCallers,
			call: func(ctx context.Context, c int) error { return Put(ctx, stubs[c]) }})
	}
	bare, err := OpenBare(filepath.Join(dir, "bare.sqlite"))
	if err != nil {
		return nil, err
	}
	defer bare.Close()
	trials = append(trials, trial{mode: "bare", label: "bare SQLite upsert loop, no mailbox (ceiling)", callers: 1,
		call: func(context.Context, int) error { return bare.Put() }})

	tps, err := interleave(ctx, cfg, trials)
	if err != nil {
		return nil, err
	}
	r = &OneResult{Durable: tps[0], PerEvent: tps[1], Bare: tps[2]}
	r.DurableVsBare = ratioOf(r.Durable.PerSec, r.Bare.PerSec)
	r.DurableVsPerEvent = ratioOf(r.Durable.PerSec, r.PerEvent.PerSec)
	return r, nil
}
