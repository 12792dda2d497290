package redispeer

import (
	_ "embed"
	"net/http"

	"github.com/redis/go-redis/v9"
)

var (
	//go:embed sliding_log.lua
	slidingLogLua    string
	slidingLogScript = redis.NewScript(slidingLogLua)

	//go:embed token_bucket.lua
	tokenBucketLua    string
	tokenBucketScript = redis.NewScript(tokenBucketLua)
)

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
	Allowed      bool      `json:"allowed"`
	Remaining    int64     `json:"remaining"`
	RetryAfterMS int64     `json:"retry_after_ms"`
	Error        errorBody `json:"error"`
}

// rateLimitCheck answers POST /v1/ratelimit/{key}/check.
func (s *Server) rateLimitCheck(w http.ResponseWriter, r *http.Request, p []string) error {
	var req checkRequest
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	limit, err := intIn("limit", req.Limit, -1, 1, 1_000_000_000)
	if err != nil {
		return err
	}
	window, err := intIn("window_ms", req.WindowMS, -1, 1, 2_592_000_000)
	if err != nil {
		return err
	}
	cost, err := intIn("cost", req.Cost, 1, 1, limit)
	if err != nil {
		return err
	}
	algo := "sliding_log"
	if req.Algorithm != nil {
		algo = *req.Algorithm
	}
	var out []int64
	switch algo {
	case "sliding_log":
		out, err = slidingLogScript.Run(r.Context(), s.rdb, []string{"rl:" + p[0], "rlm:" + p[0]}, limit, window, cost).Int64Slice()
	case "token_bucket":
		out, err = tokenBucketScript.Run(r.Context(), s.rdb, []string{"tb:" + p[0]}, limit, window, cost).Int64Slice()
	default:
		return errInvalid(`algorithm must be "sliding_log" or "token_bucket", got %q`, algo)
	}
	if err != nil {
		return err
	}
	if out[0] == 1 {
		writeJSON(w, http.StatusOK, checkAllowed{Allowed: true, Remaining: out[1], ResetMS: out[2]})
		return nil
	}
	w.Header().Set("Retry-After", ceilSeconds(out[2]))
	writeJSON(w, http.StatusTooManyRequests, checkDenied{
		RetryAfterMS: out[2],
		Error:        errorBody{Code: "rate_limited", Message: "rate limit exceeded"},
	})
	return nil
}
