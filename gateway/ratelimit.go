package gateway

import (
	"net/http"
	"strconv"

	"github.com/durableobjects/durable/patterns/ratelimit"
)

// checkRequest is the body of POST /v1/ratelimit/{key}/check. Pointers
// tell a missing field from a zero.
type checkRequest struct {
	Limit     *int64  `json:"limit"`
	WindowMS  *int64  `json:"window_ms"`
	Cost      *int64  `json:"cost"`
	Algorithm *string `json:"algorithm"`
}

type checkAllowed struct {
	Allowed   bool  `json:"allowed"`
	Remaining int64 `json:"remaining"`
	ResetMS   int64 `json:"reset_ms"`
}

type checkDenied struct {
	Allowed      bool        `json:"allowed"`
	Remaining    int64       `json:"remaining"`
	RetryAfterMS int64       `json:"retry_after_ms"`
	Error        errorDetail `json:"error"`
}

// setupRateLimit registers the ratelimit routes of api.md.
func (g *Gateway) setupRateLimit() error {
	rl, err := ratelimit.Register(g.rt)
	if err != nil {
		return err
	}
	g.handle("POST /v1/ratelimit/{key}/check", func(w http.ResponseWriter, r *http.Request) error {
		key, err := pathParam(r, "key")
		if err != nil {
			return err
		}
		var body checkRequest
		if err := decodeJSON(w, r, g.cfg.MaxBody, &body); err != nil {
			return err
		}
		req, err := body.validate()
		if err != nil {
			return err
		}
		res, err := rl.Check(r.Context(), key, req)
		if err != nil {
			return err
		}
		if res.Allowed {
			writeJSON(w, http.StatusOK, checkAllowed{Allowed: true, Remaining: res.Remaining, ResetMS: res.ResetMS})
			return nil
		}
		w.Header().Set("Retry-After", strconv.FormatInt((res.RetryAfterMS+999)/1000, 10))
		writeJSON(w, http.StatusTooManyRequests, checkDenied{
			RetryAfterMS: res.RetryAfterMS,
			Error: errorDetail{Code: "rate_limited",
				Message: "rate limit exceeded: retry in " + strconv.FormatInt(res.RetryAfterMS, 10) + " ms"},
		})
		return nil
	})
	return nil
}

// validate checks the body against api.md and applies the defaults.
func (b checkRequest) validate() (ratelimit.Request, error) {
	var req ratelimit.Request
	switch {
	case b.Limit == nil:
		return req, invalid("limit is required")
	case *b.Limit < 1 || *b.Limit > ratelimit.MaxLimit:
		return req, invalid("limit must be 1..%d, got %d", ratelimit.MaxLimit, *b.Limit)
	case b.WindowMS == nil:
		return req, invalid("window_ms is required")
	case *b.WindowMS < 1 || *b.WindowMS > ratelimit.MaxWindowMS:
		return req, invalid("window_ms must be 1..%d, got %d", ratelimit.MaxWindowMS, *b.WindowMS)
	}
	req.Limit, req.WindowMS, req.Cost, req.Algorithm = *b.Limit, *b.WindowMS, 1, ratelimit.SlidingLog
	if b.Cost != nil {
		if *b.Cost < 1 || *b.Cost > req.Limit {
			return req, invalid("cost must be 1..limit (%d), got %d", req.Limit, *b.Cost)
		}
		req.Cost = *b.Cost
	}
	if b.Algorithm != nil {
		switch a := ratelimit.Algorithm(*b.Algorithm); a {
		case ratelimit.SlidingLog, ratelimit.TokenBucket:
			req.Algorithm = a
		default:
			return req, invalid("algorithm must be %q or %q", ratelimit.SlidingLog, ratelimit.TokenBucket)
		}
	}
	return req, nil
}
