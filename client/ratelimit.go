package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// Algorithm is a rate-limit algorithm of api.md.
type Algorithm string

// The algorithms of POST /v1/ratelimit/{key}/check.
const (
	SlidingLog  Algorithm = "sliding_log"  // exact (the server's default)
	TokenBucket Algorithm = "token_bucket" // GCRA, O(1) storage
)

// CheckRequest is a rate-limit check: at most Limit cost units per Window.
type CheckRequest struct {
	Limit int64 // 1..1e9; required
	// Window is sent in whole milliseconds, rounded up: 1 ms..30 days;
	// required.
	Window time.Duration
	// Cost is what this request spends, 1..Limit; 0 sends none (the
	// server's default, 1).
	Cost int64
	// Algorithm is SlidingLog or TokenBucket; "" sends none (the server's
	// default, SlidingLog).
	Algorithm Algorithm
}

// CheckResult is a rate-limit decision. A denial is a result, not an
// error.
type CheckResult struct {
	Allowed bool
	// Remaining is what is left of the limit after an allowed request
	// (0 when denied).
	Remaining int64
	// Reset (allowed only) is the time until the key is back to its full
	// limit if no further request arrives.
	Reset time.Duration
	// RetryAfter (denied only) is the time until this same request would
	// be allowed.
	RetryAfter time.Duration
}

type checkBody struct {
	Limit     int64     `json:"limit"`
	WindowMS  int64     `json:"window_ms"`
	Cost      int64     `json:"cost,omitempty"`
	Algorithm Algorithm `json:"algorithm,omitempty"`
}

// CheckRateLimit checks (and, if allowed, spends) req.Cost against key's
// limit: POST /v1/ratelimit/{key}/check. A denial (429) returns a result
// with Allowed false and RetryAfter, and a nil error.
//
// Retries: after a 503 overloaded/unavailable or a failed dial only. A
// connection error once the request may have been sent is returned (with
// ErrUnknownOutcome), never retried: the check may have spent budget, and
// a second one would spend it twice.
func (c *Client) CheckRateLimit(ctx context.Context, key string, req CheckRequest) (*CheckResult, error) {
	k, err := seg("key", key)
	if err != nil {
		return nil, err
	}
	r := &request{method: http.MethodPost, path: "/v1/ratelimit/" + k + "/check", safety: once,
		body: checkBody{Limit: req.Limit, WindowMS: ms(req.Window), Cost: req.Cost, Algorithm: req.Algorithm}}
	resp, err := c.send(ctx, r)
	if err != nil {
		return nil, err
	}
	var body struct {
		Allowed      bool  `json:"allowed"`
		Remaining    int64 `json:"remaining"`
		ResetMS      int64 `json:"reset_ms"`
		RetryAfterMS int64 `json:"retry_after_ms"`
	}
	switch resp.status {
	case http.StatusOK, http.StatusTooManyRequests:
		if resp.status == http.StatusTooManyRequests && resp.apiError().Code != CodeRateLimited {
			return nil, resp.err()
		}
		if err := json.Unmarshal(resp.body, &body); err != nil {
			return nil, fmt.Errorf("durable: rate-limit check: decoding the %d answer: %w", resp.status, err)
		}
	default:
		return nil, resp.err()
	}
	return &CheckResult{
		Allowed:    body.Allowed,
		Remaining:  body.Remaining,
		Reset:      time.Duration(body.ResetMS) * time.Millisecond,
		RetryAfter: time.Duration(body.RetryAfterMS) * time.Millisecond,
	}, nil
}

// ms converts a duration to whole milliseconds, rounding away from zero
// (so a duration other than 0 never becomes 0: a negative one stays
// negative, and the server refuses it, rather than becoming the default).
func ms(d time.Duration) int64 {
	if d < 0 {
		return -ms(-d)
	}
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}

// fromMS converts api.md's milliseconds since the epoch to a time.
func fromMS(v int64) time.Time { return time.UnixMilli(v) }
