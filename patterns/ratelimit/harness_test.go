package ratelimit

import (
	"context"
	"testing"
	"time"

	"github.com/durableobjects/durable"
	"github.com/durableobjects/durable/durabletest"
)

// t0 is where the tests' clocks start.
var t0 = time.UnixMilli(1_700_000_000_000)

// harness is a real runtime on real SQLite files with a clock the test
// moves, and the limiter registered on it.
type harness struct {
	t     *testing.T
	rt    *durable.Runtime
	c     *Client
	clock *durabletest.Clock
	dir   string
}

// newHarness opens a runtime on dir (a new directory if "") whose clock
// starts at start.
func newHarness(t *testing.T, dir string, start time.Time, setup ...func(*durable.Runtime)) *harness {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	rt := durable.NewRuntime(dir)
	clock := durabletest.NewClock(start)
	rt.Clock = clock
	c, err := Register(rt)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range setup {
		f(rt)
	}
	if err := rt.Open(); err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, rt: rt, c: c, clock: clock, dir: dir}
	t.Cleanup(h.close)
	return h
}

func (h *harness) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.rt.Close(ctx); err != nil {
		h.t.Errorf("close runtime: %v", err)
	}
}

// ms returns the clock's time in ms after t0.
func (h *harness) ms() int64 { return h.clock.Now().UnixMilli() - t0.UnixMilli() }

// at moves the clock to t0 + ms.
func (h *harness) at(ms int64) { h.clock.Set(t0.Add(time.Duration(ms) * time.Millisecond)) }

func (h *harness) check(key string, req Request) Result {
	h.t.Helper()
	res, err := h.c.Check(context.Background(), key, req)
	if err != nil {
		h.t.Fatalf("check %s %+v at +%dms: %v", key, req, h.ms(), err)
	}
	return res
}

// expect checks key with req and compares the whole result.
func (h *harness) expect(key string, req Request, want Result) {
	h.t.Helper()
	if got := h.check(key, req); got != want {
		h.t.Fatalf("check %s %+v at +%dms = %+v, want %+v", key, req, h.ms(), got, want)
	}
}

func (h *harness) stats(key string) Stats {
	h.t.Helper()
	st, err := h.c.Stats(context.Background(), key)
	if err != nil {
		h.t.Fatalf("stats %s: %v", key, err)
	}
	return st
}

// waitStats polls key's stats until ok accepts them.
func (h *harness) waitStats(key, what string, ok func(Stats) bool) Stats {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := h.stats(key)
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("%s: gave up waiting; stats %+v", what, st)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func allowed(remaining, reset int64) Result {
	return Result{Allowed: true, Remaining: remaining, ResetMS: reset}
}

func denied(retry int64) Result { return Result{RetryAfterMS: retry} }
