package corebench

import (
	"context"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Latency summarizes a set of timings.
type Latency struct {
	Mode    string        `json:"mode"`
	Label   string        `json:"label"`
	Samples int           `json:"samples"`
	P50     time.Duration `json:"p50_ns"`
	P90     time.Duration `json:"p90_ns"`
	P99     time.Duration `json:"p99_ns"`
	Max     time.Duration `json:"max_ns"`
}

// Summarize sorts ds and returns its percentiles.
func Summarize(ds []time.Duration) Latency {
	slices.Sort(ds)
	l := Latency{Samples: len(ds)}
	if len(ds) == 0 {
		return l
	}
	at := func(q float64) time.Duration {
		i := int(q*float64(len(ds))+0.5) - 1
		return ds[max(0, min(i, len(ds)-1))]
	}
	l.P50, l.P90, l.P99, l.Max = at(0.50), at(0.90), at(0.99), ds[len(ds)-1]
	return l
}

// ColdResult is the cold-activation scenario: the latency of the first
// call (one KV read) to an object that has a small database on disk and is
// not in memory. The runtime is closed and reopened between passes, so
// every timed call activates its object: lookup, constructor, opening the
// file, the read. The page cache stays warm (dropping it needs root).
type ColdResult struct {
	Objects int     `json:"objects"`
	Keys    int     `json:"keys"`
	Durable Latency `json:"durable"`
	Bare    Latency `json:"bare"` // sqlite3 open + PRAGMA + read of the same files

	P99VsBare float64 `json:"p99_vs_bare"`
}

// Cold runs the cold-activation scenario.
func Cold(ctx context.Context, cfg Config) (*ColdResult, error) {
	cfg = cfg.withDefaults()
	r := &ColdResult{Objects: cfg.ColdObjects, Keys: cfg.ColdKeys}
	dir, remove, err := cfg.scratch("cold")
	if err != nil {
		return nil, err
	}
	defer remove()
	data := filepath.Join(dir, "data")
	cfg.logf("cold activation: filling %d objects with %d keys of %d bytes", cfg.ColdObjects, cfg.ColdKeys, FillValueSize)
	if err := FillObjects(ctx, data, cfg.ColdObjects, cfg.ColdKeys); err != nil {
		return nil, err
	}

	paths, err := ObjectFiles(data)
	if err != nil {
		return nil, err
	}
	if len(paths) != cfg.ColdObjects {
		return nil, fmt.Errorf("found %d object files, want %d", len(paths), cfg.ColdObjects)
	}
	// Alternate passes of the two until both had cfg.Duration.
	var rtLat, bareLat []time.Duration
	for start := time.Now(); len(rtLat) == 0 || time.Since(start) < 2*cfg.Duration; {
		cfg.logf("  pass %d", len(rtLat)/cfg.ColdObjects+1)
		if rtLat, err = coldPass(ctx, cfg, data, rtLat); err != nil {
			return nil, err
		}
		if bareLat, err = coldBarePass(ctx, paths, bareLat); err != nil {
			return nil, err
		}
	}
	r.Durable = Summarize(rtLat)
	r.Durable.Mode, r.Durable.Label = "durable", "first call after the runtime reopened"
	r.Bare = Summarize(bareLat)
	r.Bare.Mode, r.Bare.Label = "bare", "bare open + read of the same file"
	r.P99VsBare = ratioOf(float64(r.Durable.P99), float64(r.Bare.P99))
	return r, nil
}

// coldPass opens the runtime, times the first call to every object in
// random order, and closes it.
func coldPass(ctx context.Context, cfg Config, data string, ds []time.Duration) ([]time.Duration, error) {
	rt, ns, err := Open(data, Syncfs)
	if err != nil {
		return nil, err
	}
	for _, i := range rand.Perm(cfg.ColdObjects) {
		s := ns.GetByName(Name(i))
		t := time.Now()
		err = Read(ctx, s)
		ds = append(ds, time.Since(t))
		if err != nil {
			break
		}
	}
	if cerr := Close(rt); err == nil {
		err = cerr
	}
	return ds, err
}

// coldBarePass times BareRead on every object file, in random order.
func coldBarePass(ctx context.Context, paths []string, ds []time.Duration) ([]time.Duration, error) {
	for _, i := range rand.Perm(len(paths)) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		t := time.Now()
		c, err := BareRead(paths[i])
		ds = append(ds, time.Since(t))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", paths[i], err)
		}
		c.Close()
	}
	return ds, nil
}

// FillObjects gives objects objects (named Name(i)) a small database of
// keys keys in the data directory data, then closes the runtime: every
// object is cold afterwards.
func FillObjects(ctx context.Context, data string, objects, keys int) error {
	rt, ns, err := Open(data, Syncfs)
	if err != nil {
		return err
	}
	err = parallel(ctx, objects, 64, func(ctx context.Context, i int) error {
		return Fill(ctx, ns.GetByName(Name(i)), keys)
	})
	if cerr := Close(rt); err == nil {
		err = cerr
	}
	return err
}

// ObjectFiles returns the database files of the benchmark class's objects
// in the data directory data.
func ObjectFiles(data string) ([]string, error) {
	var paths []string
	err := filepath.WalkDir(filepath.Join(data, Class), func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".sqlite") {
			paths = append(paths, p)
		}
		return err
	})
	return paths, err
}
