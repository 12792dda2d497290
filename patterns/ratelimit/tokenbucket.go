package ratelimit

import "github.com/durableobjects/durable"

// tat is a time in milliseconds kept exactly: ms + frac/den, with
// 0 <= frac < den. The token bucket's emission interval window/limit is
// rarely a whole number of milliseconds; on the grid of 1/limit ms every
// step of GCRA is an exact int64 operation (all products stay below 2^63:
// limit <= 1e9, window <= 2.592e9).
type tat struct {
	ms, frac, den int64
}

// after reports whether t is later than the instant ms.
func (t tat) after(ms int64) bool { return t.ms > ms || t.ms == ms && t.frac > 0 }

// ceil returns t rounded up to the millisecond.
func (t tat) ceil() int64 {
	if t.frac > 0 {
		return t.ms + 1
	}
	return t.ms
}

// on returns t on the grid of 1/den ms, rounded up (later: never more
// tokens than the exact value). Exact when the grid does not change.
func (t tat) on(den int64) tat {
	if t.den == den {
		return t
	}
	frac := (t.frac*den + t.den - 1) / t.den
	if frac == den {
		return tat{ms: t.ms + 1, den: den}
	}
	return tat{ms: t.ms, frac: frac, den: den}
}

// add returns t plus n/den ms; t must be on the grid of 1/den.
func (t tat) add(n int64) tat {
	t.ms += n / t.den
	t.frac += n % t.den
	if t.frac >= t.den {
		t.ms++
		t.frac -= t.den
	}
	return t
}

// checkBucket is one GCRA check at clock time now (ms). With emission
// interval T = window/limit and burst tolerance window (a burst of limit),
// a request of cost c is allowed iff max(TAT, now) + c*T <= now + window;
// then TAT becomes that sum. The bucket is full again at TAT.
func (l *limiter) checkBucket(s *durable.Storage, now int64, req Request) (Result, error) {
	L, W := req.Limit, req.WindowMS
	t := tat{ms: now, den: L}
	if l.hasBucket {
		if b := l.bucket.on(L); b.after(now) {
			t = b
		}
	}
	n := t.add(req.Cost * W) // + cost * W/L ms
	limitAt := now + W
	if n.after(limitAt) {
		// Allowed at the first ms u with TAT + c*T <= u + W: ceil(n - W).
		return Result{RetryAfterMS: n.ceil() - W - now}, nil
	}
	// The row goes once the bucket has been full for a window: a key in
	// steady use keeps it (one cleanup run per window), instead of losing
	// and re-creating it, with an alarm each time, whenever it refills.
	if err := l.armAlarm(s, now, n.ceil()+W); err != nil {
		return Result{}, err
	}
	if err := l.setBucket(s, n, W); err != nil {
		return Result{}, err
	}
	// Remaining: the most cost c' with n + c'*W/L <= now + W, that is
	// floor((now + W - n) * L / W).
	room := (limitAt-n.ms)*L - n.frac
	return Result{Allowed: true, Remaining: room / W, ResetMS: n.ceil() - now}, nil
}
