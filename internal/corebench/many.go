package corebench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/durableobjects/durable"
)

// ManyResult is the many-objects scenario: Config.ManyCallers callers each
// calling Object.Put on a uniformly random one of Config.ManyObjects
// objects, with each durability mode.
type ManyResult struct {
	Objects   int        `json:"objects"`
	Syncfs    Throughput `json:"syncfs"`
	Fdatasync Throughput `json:"fdatasync"`
	PerObject Throughput `json:"per_object"`

	SyncfsVsPerObject    float64 `json:"syncfs_vs_per_object"`
	FdatasyncVsPerObject float64 `json:"fdatasync_vs_per_object"`
	// SyncfsVsFdatasync > 1 means syncfs (the default) was faster.
	SyncfsVsFdatasync float64 `json:"syncfs_vs_fdatasync"`
}

// Many runs the many-objects scenario. The objects are created once and
// copied, closed, into a data directory per mode; the three runtimes are
// open side by side and take turns under load.
func Many(ctx context.Context, cfg Config) (r *ManyResult, err error) {
	cfg = cfg.withDefaults()
	cfg.logf("%d objects, %d callers", cfg.ManyObjects, cfg.ManyCallers)
	dir, remove, err := cfg.scratch("many")
	if err != nil {
		return nil, err
	}
	defer remove()
	seed := filepath.Join(dir, "seed")
	err = cfg.timed("create objects", func() error { return FillObjects(ctx, seed, cfg.ManyObjects, 1) })
	if err != nil {
		return nil, err
	}
	modes := []Mode{Syncfs, Fdatasync, PerObject}
	var dirs []string
	for _, m := range modes {
		d := filepath.Join(dir, m.Key)
		if err := os.CopyFS(d, os.DirFS(seed)); err != nil {
			return nil, err
		}
		dirs = append(dirs, d)
	}
	rts, err := openRuntimes(dirs, modes)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, rts.close(cfg)) }()
	var trials []trial
	for i, m := range modes {
		stubs := make([]*durable.Stub, cfg.ManyObjects)
		for j := range stubs {
			stubs[j] = rts.nss[i].GetByName(Name(j))
		}
		err := cfg.timed("activate "+m.Key, func() error {
			return parallel(ctx, len(stubs), 64, func(ctx context.Context, j int) error { return Put(ctx, stubs[j]) })
		})
		if err != nil {
			return nil, fmt.Errorf("activate %d objects: %w", len(stubs), err)
		}
		trials = append(trials, trial{mode: m.Key, label: m.Label, rt: rts.rts[i], callers: cfg.ManyCallers,
			call: func(ctx context.Context, _ int) error { return Put(ctx, stubs[rand.IntN(len(stubs))]) }})
	}
	tps, err := interleave(ctx, cfg, trials)
	if err != nil {
		return nil, err
	}
	r = &ManyResult{Objects: cfg.ManyObjects, Syncfs: tps[0], Fdatasync: tps[1], PerObject: tps[2]}
	r.SyncfsVsPerObject = ratioOf(r.Syncfs.PerSec, r.PerObject.PerSec)
	r.FdatasyncVsPerObject = ratioOf(r.Fdatasync.PerSec, r.PerObject.PerSec)
	r.SyncfsVsFdatasync = ratioOf(r.Syncfs.PerSec, r.Fdatasync.PerSec)
	return r, nil
}
