package ratelimit

import (
	"testing"
)

func TestSlidingLogWindowSlides(t *testing.T) {
	h := newHarness(t, "", t0)
	req := Request{Limit: 3, WindowMS: 1000}
	h.expect("k", req, allowed(2, 1000))
	h.at(100)
	h.expect("k", req, allowed(1, 1000))
	h.at(200)
	h.expect("k", req, allowed(0, 1000))
	h.at(300)
	h.expect("k", req, denied(700)) // the entry at 0 leaves (now-1000, now] at 1000
	h.at(999)
	h.expect("k", req, denied(1))
	h.at(1000) // the entry at 0 is out: 100 and 200 remain
	h.expect("k", req, allowed(0, 1000))
	h.expect("k", req, denied(100)) // next to leave: the entry at 100
	h.at(1100)
	h.expect("k", req, allowed(0, 1000))
	h.at(5000) // everything left long ago
	h.expect("k", req, allowed(2, 1000))
}

func TestSlidingLogDeniedRequestsAreNotCounted(t *testing.T) {
	h := newHarness(t, "", t0)
	req := Request{Limit: 2, WindowMS: 1000}
	h.expect("k", req, allowed(1, 1000))
	h.expect("k", req, allowed(0, 1000))
	h.at(500)
	for range 5 {
		h.expect("k", req, denied(500))
	}
	if st := h.stats("k"); st.Entries != 2 || st.LogCost != 2 {
		t.Fatalf("stats %+v: want the 2 allowed requests only", st)
	}
	h.at(1000) // had the denials counted, the window would still be full
	h.expect("k", req, allowed(1, 1000))
	h.expect("k", req, allowed(0, 1000))
}

func TestSlidingLogCosts(t *testing.T) {
	h := newHarness(t, "", t0)
	r := func(cost int64) Request { return Request{Limit: 10, WindowMS: 1000, Cost: cost} }
	h.expect("k", r(4), allowed(6, 1000))
	h.at(10)
	h.expect("k", r(5), allowed(1, 1000))
	h.at(20)
	// 9 used + 3 is 2 over: the entry at 0 (cost 4) must leave, at 1000.
	h.expect("k", r(3), denied(980))
	h.expect("k", r(1), allowed(0, 1000))
	h.at(1000) // left: the entry at 0; in the window: 5 (at 10) + 1 (at 20)
	h.expect("k", r(2), allowed(2, 1000))
	// 8 used + 5 is 3 over: the entry at 10 (cost 5) frees enough, at 1010.
	h.expect("k", r(5), denied(10))
	// 8 used + 10 is 8 over: entries at 10, 20 (6) are not enough; the one
	// at 1000 (cost 2) must leave too, at 2000.
	h.expect("k", r(10), denied(1000))
	h.at(2000)
	h.expect("k", r(10), allowed(0, 1000))
}

func TestSlidingLogSameMillisecond(t *testing.T) {
	h := newHarness(t, "", t0)
	req := Request{Limit: 5, WindowMS: 100}
	for i := range int64(5) {
		h.expect("k", req, allowed(4-i, 100))
	}
	h.expect("k", req, denied(100))
	h.at(99)
	h.expect("k", req, denied(1))
	h.at(100) // all five leave together
	h.expect("k", req, allowed(4, 100))
}

// Each check applies its own limit and window to the stored history.
func TestSlidingLogEachCheckUsesItsOwnParameters(t *testing.T) {
	h := newHarness(t, "", t0)
	long := Request{Limit: 2, WindowMS: 10_000}
	short := Request{Limit: 1, WindowMS: 1000}
	h.expect("k", long, allowed(1, 10_000))
	h.at(2000)
	h.expect("k", short, allowed(0, 1000)) // the entry at 0 is outside 1 s
	h.expect("k", short, denied(1000))
	// The long window sees both entries: 2 used, limit 2. The entry at 0
	// leaves it at 10000.
	h.expect("k", long, denied(8000))
	h.expect("k", Request{Limit: 3, WindowMS: 10_000}, allowed(0, 10_000))
	h.expect("k", Request{Limit: 100, WindowMS: 2001}, allowed(96, 2001)) // 0, 2000, 2000 and this
	h.expect("k", Request{Limit: 100, WindowMS: 2000}, allowed(96, 2000)) // 2000, 2000, 2000 and this
}

func TestSlidingLogRemainingAtTheLimits(t *testing.T) {
	h := newHarness(t, "", t0)
	h.expect("big", Request{Limit: MaxLimit, WindowMS: MaxWindowMS, Cost: MaxLimit}, allowed(0, MaxWindowMS))
	h.expect("big", Request{Limit: MaxLimit, WindowMS: MaxWindowMS}, denied(MaxWindowMS))
	h.expect("one", Request{Limit: 1, WindowMS: 1}, allowed(0, 1))
	h.expect("one", Request{Limit: 1, WindowMS: 1}, denied(1))
	h.at(1)
	h.expect("one", Request{Limit: 1, WindowMS: 1}, allowed(0, 1))
}

// The running totals move back near zero before they could overflow, and
// the counts stay exact across the move.
func TestSlidingLogRebase(t *testing.T) {
	defer func(v int64) { rebaseAbove = v }(rebaseAbove)
	rebaseAbove = 15
	h := newHarness(t, "", t0)
	one := Request{Limit: 10, WindowMS: 100}
	three := Request{Limit: 10, WindowMS: 100, Cost: 3}
	for range 10 {
		h.check("k", one) // cum 1..10 at 0
	}
	h.at(950)
	for range 3 {
		h.check("k", three) // cum 13, 16, 19 at 950
	}
	// The cleanup alarm (set for 0 + max(100, 1 s)) deletes the 10 rows at
	// 0, leaving rows 11..19: base 10, span 9.
	h.at(1000)
	h.waitStats("k", "cleanup", func(st Stats) bool { return st.Entries == 3 })
	before := rebases.Load()
	h.at(1100)
	// 19 > 15: the check rebases first. (900, 1100] holds the three at 950.
	h.expect("k", Request{Limit: 10, WindowMS: 200}, allowed(0, 200))
	if got := rebases.Load() - before; got != 1 {
		t.Fatalf("%d rebases, want 1", got)
	}
	h.expect("k", Request{Limit: 10, WindowMS: 200}, denied(50)) // the first at 950 leaves at 1150
	h.expect("k", Request{Limit: 10, WindowMS: 200, Cost: 7}, denied(50))
	h.expect("k", Request{Limit: 10, WindowMS: 200, Cost: 8}, denied(50))   // the three at 950 free 9
	h.expect("k", Request{Limit: 10, WindowMS: 200, Cost: 10}, denied(200)) // all four must leave
	h.at(1150)
	h.expect("k", Request{Limit: 10, WindowMS: 200, Cost: 3}, allowed(6, 200)) // (950, 1150]: the one at 1100
	if st := h.stats("k"); st.Entries != 5 || st.LogCost != 13 {
		t.Fatalf("stats %+v, want 5 entries of cost 13", st)
	}
}
