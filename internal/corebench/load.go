package corebench

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/durableobjects/durable"
)

// Throughput is the outcome of a closed-loop load: the events completed in
// the measured windows.
type Throughput struct {
	Mode    string        `json:"mode"`
	Label   string        `json:"label"`
	Callers int           `json:"callers"`
	Events  int64         `json:"events"`
	Elapsed time.Duration `json:"elapsed_ns"`
	PerSec  float64       `json:"per_sec"`
	// Rounds are the rates of the separate windows, whose spread shows how
	// steady the machine was.
	Rounds []float64 `json:"rounds_per_sec"`
	// Runtime is what the runtime counted in the windows; nil for
	// baselines that run no runtime.
	Runtime *Counters `json:"runtime,omitempty"`
}

// Spread is (fastest - slowest) / mean of the rounds' rates.
func (t Throughput) Spread() float64 {
	if len(t.Rounds) < 2 || t.PerSec == 0 {
		return 0
	}
	return (slices.Max(t.Rounds) - slices.Min(t.Rounds)) / t.PerSec
}

// ratioOf is a/b, or 0 when b is 0 (a configuration that completed
// nothing), so reports stay valid JSON.
func ratioOf(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// Counters are the runtime's work in the measured windows, from
// Runtime.Stats: how many events each commit carried and, with the
// durability barrier, how many events and commits each sync round made
// durable.
type Counters struct {
	Events          uint64        `json:"events"`
	Commits         uint64        `json:"commits"`
	SyncRounds      uint64        `json:"sync_rounds"`
	SyncTime        time.Duration `json:"sync_time_ns"`
	EventsPerCommit float64       `json:"events_per_commit"`
	EventsPerSync   float64       `json:"events_per_sync,omitempty"`
	CommitsPerSync  float64       `json:"commits_per_sync,omitempty"`
	MeanSync        time.Duration `json:"mean_sync_ns,omitempty"`
}

// CountersBetween returns the runtime's work between two snapshots.
func CountersBetween(a, b durable.Stats) *Counters {
	c := &Counters{
		Events:     b.Events - a.Events,
		Commits:    b.Commits - a.Commits,
		SyncRounds: b.SyncRounds - a.SyncRounds,
		SyncTime:   b.SyncLatencySum - a.SyncLatencySum,
	}
	c.derive()
	return c
}

func (c *Counters) add(d *Counters) {
	c.Events += d.Events
	c.Commits += d.Commits
	c.SyncRounds += d.SyncRounds
	c.SyncTime += d.SyncTime
	c.derive()
}

func (c *Counters) derive() {
	if c.Commits > 0 {
		c.EventsPerCommit = float64(c.Events) / float64(c.Commits)
	}
	if c.SyncRounds > 0 {
		c.EventsPerSync = float64(c.Events) / float64(c.SyncRounds)
		c.CommitsPerSync = float64(c.Commits) / float64(c.SyncRounds)
		c.MeanSync = c.SyncTime / time.Duration(c.SyncRounds)
	}
}

// trial is one configuration under load: a runtime (nil for a baseline),
// its callers, and the call each of them makes in a loop.
type trial struct {
	mode, label string
	rt          *durable.Runtime
	callers     int
	call        func(ctx context.Context, caller int) error
}

// interleave measures trials in cfg.Rounds rounds, each of which gives
// every trial a window of cfg.Duration/cfg.Rounds in turn (A B C A B C …),
// so load from outside the run that comes and goes hits every trial alike.
func interleave(ctx context.Context, cfg Config, trials []trial) ([]Throughput, error) {
	out := make([]Throughput, len(trials))
	for i, t := range trials {
		out[i] = Throughput{Mode: t.mode, Label: t.label, Callers: t.callers}
		if t.rt != nil {
			out[i].Runtime = &Counters{}
		}
	}
	window := cfg.Duration / time.Duration(cfg.Rounds)
	for round := range cfg.Rounds {
		for i, t := range trials {
			cfg.logf("  round %d/%d: %s", round+1, cfg.Rounds, t.label)
			n, d, c, err := load(ctx, t.rt, t.callers, cfg.Warmup, window, t.call)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", t.label, err)
			}
			tp := &out[i]
			tp.Events += n
			tp.Elapsed += d
			tp.Rounds = append(tp.Rounds, ratioOf(float64(n), d.Seconds()))
			if c != nil {
				tp.Runtime.add(c)
			}
		}
	}
	for i := range out {
		out[i].PerSec = ratioOf(float64(out[i].Events), out[i].Elapsed.Seconds())
	}
	return out, nil
}

// load runs callers goroutines, each calling fn in a loop until the load
// ends, and counts the calls that completed between warmup and
// warmup+window. rt, if not nil, has its counters sampled at both ends of
// the window. The first error from fn stops the load and is returned.
func load(ctx context.Context, rt *durable.Runtime, callers int, warmup, window time.Duration, fn func(ctx context.Context, caller int) error) (int64, time.Duration, *Counters, error) {
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		done    atomic.Int64
		errOnce sync.Once
		loadErr error
		wg      sync.WaitGroup
	)
	for c := range callers {
		wg.Go(func() {
			for lctx.Err() == nil {
				if err := fn(lctx, c); err != nil {
					if lctx.Err() == nil {
						errOnce.Do(func() { loadErr = err; cancel() })
					}
					return
				}
				done.Add(1)
			}
		})
	}
	var s0, s1 durable.Stats
	sleep(lctx, warmup)
	n0, t0 := done.Load(), time.Now()
	if rt != nil {
		s0 = rt.Stats()
	}
	sleep(lctx, window)
	n1, t1 := done.Load(), time.Now()
	if rt != nil {
		s1 = rt.Stats()
	}
	cancel()
	wg.Wait()
	if loadErr != nil {
		return 0, 0, nil, loadErr
	}
	if err := ctx.Err(); err != nil {
		return 0, 0, nil, err
	}
	var c *Counters
	if rt != nil {
		c = CountersBetween(s0, s1)
	}
	return n1 - n0, t1.Sub(t0), c, nil
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
