package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// workerStats is what one worker saw in one phase. Only its worker touches
// it until the phase ends.
type workerStats struct {
	hist      Histogram
	ops       int64
	failed    int64
	requests  int64
	transport int64
	statuses  map[int]int64
	firstErr  string
}

func (s *workerStats) status(code int) {
	if s == nil {
		return
	}
	s.requests++
	s.statuses[code]++
}

func (s *workerStats) transportError(err error) {
	if s == nil {
		return
	}
	s.requests++
	s.transport++
	s.noteErr(err)
}

func (s *workerStats) noteErr(err error) {
	if s.firstErr == "" {
		s.firstErr = err.Error()
	}
}

// Run prepares cfg's scenario against cfg.BaseURL, runs the optional warmup,
// then measures until cfg.Duration has passed or cfg.Ops ops have started,
// and reports what it saw. Ops in flight when the duration ends are finished
// and counted. If ctx is cancelled, Run stops early and returns what it
// measured so far together with ctx's error.
func Run(ctx context.Context, cfg Config) (Result, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return Result{}, err
	}
	sc, _ := Lookup(cfg.Scenario)
	seed := cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	hc := newHTTPClient(cfg.Conns, cfg.RequestTimeout)
	defer hc.CloseIdleConnections()
	base := &Client{base: strings.TrimRight(cfg.BaseURL, "/"), hc: hc}
	if cfg.Token != "" {
		base.auth = "Bearer " + cfg.Token
	}

	var cleanups []func()
	defer func() {
		for _, f := range slices.Backward(cleanups) {
			f()
		}
	}()
	env := Env{Client: base, Conns: cfg.Conns, Seed: seed, Cleanup: func(f func()) { cleanups = append(cleanups, f) }}
	newOp, err := sc.Prepare(ctx, env)
	if err != nil {
		return Result{}, fmt.Errorf("loadgen: prepare %s: %w", sc.Name, err)
	}
	ops := make([]Op, cfg.Conns)
	for w := range ops {
		ops[w] = newOp(w)
	}
	if cfg.Warmup > 0 {
		runPhase(ctx, base, ops, cfg.Warmup, 0)
	}
	stats, elapsed := runPhase(ctx, base, ops, cfg.Duration, cfg.Ops)
	res := newResult(cfg, sc, stats, elapsed)
	return res, ctx.Err()
}

// runPhase runs one worker per op until d has passed (if d > 0) and budget
// ops have started (if budget > 0), and returns each worker's stats and the
// wall time from start until the last worker stopped.
func runPhase(ctx context.Context, base *Client, ops []Op, d time.Duration, budget int64) ([]*workerStats, time.Duration) {
	stats := make([]*workerStats, len(ops))
	var started atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for w, op := range ops {
		st := &workerStats{statuses: make(map[int]int64)}
		stats[w] = st
		c := *base
		c.stats = st
		wg.Go(func() {
			for ctx.Err() == nil {
				if d > 0 && !time.Now().Before(deadline) {
					return
				}
				if budget > 0 && started.Add(1) > budget {
					return
				}
				t0 := time.Now()
				err := op(ctx, &c)
				lat := time.Since(t0)
				if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
					return // cut short by the caller: not a result
				}
				st.ops++
				st.hist.Record(lat)
				if err != nil {
					st.failed++
					st.noteErr(err)
				}
			}
		})
	}
	wg.Wait()
	return stats, time.Since(start)
}
