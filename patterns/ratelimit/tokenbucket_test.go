package ratelimit

import "testing"

func tb(limit, window, cost int64) Request {
	return Request{Limit: limit, WindowMS: window, Cost: cost, Algorithm: TokenBucket}
}

// Emission interval 100 ms: every value by hand.
func TestTokenBucketWholeInterval(t *testing.T) {
	h := newHarness(t, "", t0)
	h.expect("k", tb(10, 1000, 1), allowed(9, 100))  // TAT 100
	h.expect("k", tb(10, 1000, 9), allowed(0, 1000)) // TAT 1000 = now + window: the burst is used
	h.expect("k", tb(10, 1000, 1), denied(100))      // TAT 1100 would be 100 past now + window
	h.at(99)
	h.expect("k", tb(10, 1000, 1), denied(1))
	h.at(100)
	h.expect("k", tb(10, 1000, 1), allowed(0, 1000)) // TAT 1100
	h.at(600)
	h.expect("k", tb(10, 1000, 1), allowed(4, 600)) // TAT 1200; (1600-1200)/100 = 4 left
	h.expect("k", tb(10, 1000, 5), denied(100))     // TAT 1700 > 1600
	h.expect("k", tb(10, 1000, 4), allowed(0, 1000))
	h.at(5000) // long idle: full again
	h.expect("k", tb(10, 1000, 1), allowed(9, 100))
}

// Emission interval 333⅓ ms: the bucket keeps the fraction exactly.
func TestTokenBucketFractionalInterval(t *testing.T) {
	h := newHarness(t, "", t0)
	h.expect("k", tb(3, 1000, 1), allowed(2, 334))  // TAT 333⅓
	h.expect("k", tb(3, 1000, 2), allowed(0, 1000)) // TAT 1000 exactly
	h.expect("k", tb(3, 1000, 1), denied(334))      // needs now >= 1333⅓ - 1000
	h.at(333)
	h.expect("k", tb(3, 1000, 1), denied(1))
	h.at(334)
	h.expect("k", tb(3, 1000, 1), allowed(0, 1000)) // TAT 1333⅓, full at 1334
	// Thirds add up over many steps with no drift: 3 per second, forever.
	h.at(100_000)
	n := 0
	for ms := int64(100_000); ms < 160_000; ms += 10 {
		h.at(ms)
		if h.check("steady", tb(3, 1000, 1)).Allowed {
			n++
		}
	}
	// A full burst of 3 at the start, then one every 333⅓ ms for 60 s.
	if want := 3 + 179; n != want {
		t.Fatalf("%d allowed in 60 s, want %d", n, want)
	}
}

func TestTokenBucketExtremes(t *testing.T) {
	h := newHarness(t, "", t0)
	// 1e9 tokens per ms: an interval of 1e-9 ms.
	h.expect("fast", tb(MaxLimit, 1, MaxLimit), allowed(0, 1))
	h.expect("fast", tb(MaxLimit, 1, 1), denied(1))
	h.at(1)
	h.expect("fast", tb(MaxLimit, 1, 1), allowed(MaxLimit-1, 1))
	// 1e9 tokens per 30 days: an interval of 2.592 ms.
	h.expect("slow", tb(MaxLimit, MaxWindowMS, MaxLimit), allowed(0, MaxWindowMS))
	// TAT is now 1 + window; one more token needs now >= 1 + 2.592.
	h.expect("slow", tb(MaxLimit, MaxWindowMS, 1), denied(3)) // at 4: ceil(3.592)
	h.expect("slow", tb(MaxLimit, MaxWindowMS, 2), denied(6)) // at 7: ceil(6.184)
	h.expect("one", tb(1, MaxWindowMS, 1), allowed(0, MaxWindowMS))
	h.expect("one", tb(1, MaxWindowMS, 1), denied(MaxWindowMS))
}

// A check with another limit moves the stored time onto its own grid,
// rounding up: never more tokens than exact arithmetic gives.
func TestTokenBucketChangingLimit(t *testing.T) {
	h := newHarness(t, "", t0)
	h.expect("k", tb(3, 1000, 1), allowed(2, 334)) // TAT 333⅓
	// On halves: 333½, + 500 = 833½: 166½ ms of room is 0.333 of a token.
	h.expect("k", tb(2, 1000, 1), allowed(0, 834))
	h.expect("k", tb(2, 1000, 1), denied(334)) // 1333½ - 1000, rounded up
	// A bigger window on the same bucket: 10 per 10 s allows a burst
	// up to TAT <= now + 10 s.
	h.expect("k", tb(10, 10_000, 9), allowed(0, 9834))
}

// The two algorithms keep separate state on one key.
func TestAlgorithmsAreIndependent(t *testing.T) {
	h := newHarness(t, "", t0)
	h.expect("k", tb(1, 1000, 1), allowed(0, 1000))
	h.expect("k", Request{Limit: 1, WindowMS: 1000}, allowed(0, 1000))
	h.expect("k", tb(1, 1000, 1), denied(1000))
	h.expect("k", Request{Limit: 1, WindowMS: 1000}, denied(1000))
}
