package ratelimit

import (
	"context"
	"fmt"

	"github.com/durableobjects/durable"
)

// ClassName is the class the limiter objects are registered under.
const ClassName = "ratelimit"

// Limits of a Request (api.md).
const (
	MaxLimit    = 1_000_000_000
	MaxWindowMS = 2_592_000_000 // 30 days
)

// Algorithm selects how a check counts.
type Algorithm string

// The algorithms.
const (
	// SlidingLog allows a request iff the summed cost of the allowed
	// requests with a timestamp in (now-window, now], plus its own cost, is
	// at most the limit. Denied requests are not counted.
	SlidingLog Algorithm = "sliding_log"
	// TokenBucket is GCRA: limit tokens refill per window, with a burst of
	// limit, kept in one row.
	TokenBucket Algorithm = "token_bucket"
)

// Request is one check.
type Request struct {
	// Limit is the most cost allowed per window: 1..MaxLimit.
	Limit int64 `json:"limit"`
	// WindowMS is the window in milliseconds: 1..MaxWindowMS.
	WindowMS int64 `json:"window_ms"`
	// Cost is what this request counts for: 1..Limit; 0 means 1.
	Cost int64 `json:"cost,omitempty"`
	// Algorithm is SlidingLog (the default when empty) or TokenBucket.
	Algorithm Algorithm `json:"algorithm,omitempty"`
}

// normalize applies the defaults and checks the ranges.
func (r Request) normalize() (Request, error) {
	if r.Cost == 0 {
		r.Cost = 1
	}
	if r.Algorithm == "" {
		r.Algorithm = SlidingLog
	}
	switch {
	case r.Limit < 1 || r.Limit > MaxLimit:
		return r, fmt.Errorf("%w: limit %d is outside 1..%d", ErrInvalid, r.Limit, MaxLimit)
	case r.WindowMS < 1 || r.WindowMS > MaxWindowMS:
		return r, fmt.Errorf("%w: window_ms %d is outside 1..%d", ErrInvalid, r.WindowMS, MaxWindowMS)
	case r.Cost < 1 || r.Cost > r.Limit:
		return r, fmt.Errorf("%w: cost %d is outside 1..limit (%d)", ErrInvalid, r.Cost, r.Limit)
	case r.Algorithm != SlidingLog && r.Algorithm != TokenBucket:
		return r, fmt.Errorf("%w: algorithm %q is not %q or %q", ErrInvalid, r.Algorithm, SlidingLog, TokenBucket)
	}
	return r, nil
}

// Result is the answer to a check. Durations are relative to the runtime
// clock's time when the check ran.
type Result struct {
	Allowed bool `json:"allowed"`
	// Remaining is how much more cost the same parameters would allow right
	// now (0 when denied).
	Remaining int64 `json:"remaining"`
	// ResetMS, when allowed, is the time until the key is back to its full
	// limit if no further request arrives.
	ResetMS int64 `json:"reset_ms"`
	// RetryAfterMS, when denied, is the time until this same request would
	// be allowed if no other request arrives (at least 1).
	RetryAfterMS int64 `json:"retry_after_ms"`
}

// Stats describes what a key stores, for operators and tests.
type Stats struct {
	// Entries is the number of rows in the key's sliding log, and LogCost
	// their summed cost; OldestMS and NewestMS are their timestamps (0 when
	// the log is empty).
	Entries  int64 `json:"entries"`
	LogCost  int64 `json:"log_cost"`
	OldestMS int64 `json:"oldest_ms"`
	NewestMS int64 `json:"newest_ms"`
	// RetentionMS is how long log entries are kept: the largest window a
	// check used on the key since its log was last empty (0 when empty).
	RetentionMS int64 `json:"retention_ms"`
	// Bucket reports whether the token bucket's row exists (it is deleted
	// once the bucket has been full for the window of the last allowed
	// check); BucketTATMS is its theoretical arrival time, rounded up to
	// the millisecond.
	Bucket      bool  `json:"bucket"`
	BucketTATMS int64 `json:"bucket_tat_ms"`
	// AlarmAtMS is when the cleanup alarm is set for (0 for none).
	AlarmAtMS int64 `json:"alarm_at_ms"`
	// DatabaseBytes is the size of the key's database (Storage.DatabaseSize:
	// that of an empty one for a key that has no file yet).
	DatabaseBytes int64 `json:"database_bytes"`
}

// Client checks rate limits: one object per key.
type Client struct {
	ns *durable.Namespace
}

// Register registers the limiter class on rt (before rt.Open) and returns
// its client.
func Register(rt *durable.Runtime) (*Client, error) {
	ns, err := rt.Register(ClassName, newLimiter)
	if err != nil {
		return nil, err
	}
	if err := ns.SetSchema(logSchema); err != nil {
		return nil, err
	}
	return &Client{ns: ns}, nil
}

// Check runs one check of key's limit. It fails with ErrInvalid if req is
// out of range, and with the runtime's errors (durable.ErrOverloaded …).
func (c *Client) Check(ctx context.Context, key string, req Request) (Result, error) {
	req, err := req.normalize()
	if err != nil {
		return Result{}, err
	}
	return durable.Call[Result](ctx, c.ns.GetByName(key), "Check", req)
}

// Stats returns what key stores.
func (c *Client) Stats(ctx context.Context, key string) (Stats, error) {
	return durable.Call[Stats](ctx, c.ns.GetByName(key), "Stats", nil)
}
