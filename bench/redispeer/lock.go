package redispeer

import (
	_ "embed"
	"fmt"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"
)

var (
	//go:embed lock_acquire.lua
	lockAcquireLua    string
	lockAcquireScript = redis.NewScript(lockAcquireLua)

	//go:embed lock_renew.lua
	lockRenewLua    string
	lockRenewScript = redis.NewScript(lockRenewLua)

	//go:embed lock_status.lua
	lockStatusLua    string
	lockStatusScript = redis.NewScript(lockStatusLua)
)

// Polling bounds of a waiting acquire.
const (
	minPoll = time.Millisecond
	maxPoll = 20 * time.Millisecond
)

func lockKeys(name string) []string { return []string{"lk:" + name, "lf:" + name} }

type acquireRequest struct {
	TTLMS  *int64  `json:"ttl_ms"`
	WaitMS *int64  `json:"wait_ms"`
	Owner  *string `json:"owner"`
}

type grant struct {
	Token       string `json:"token"`
	Fencing     int64  `json:"fencing"`
	ExpiresAtMS int64  `json:"expires_at_ms"`
}

// lockAcquire answers POST /v1/locks/{name}/acquire. A waiting acquire
// retries with a backoff from minPoll to maxPoll (never sleeping past the
// holder's expiry or its own deadline); it is not first-come first-served.
func (s *Server) lockAcquire(w http.ResponseWriter, r *http.Request, p []string) error {
	var req acquireRequest
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	ttl, err := intIn("ttl_ms", req.TTLMS, 5000, 1, 3_600_000)
	if err != nil {
		return err
	}
	wait, err := intIn("wait_ms", req.WaitMS, 0, 0, 60_000)
	if err != nil {
		return err
	}
	hasOwner, owner := "0", ""
	if req.Owner != nil {
		hasOwner, owner = "1", *req.Owner
	}
	deadline := time.Now().Add(time.Duration(wait) * time.Millisecond)
	token := newToken()
	poll := minPoll
	for {
		out, err := lockAcquireScript.Run(r.Context(), s.rdb, lockKeys(p[0]), token, ttl, hasOwner, owner).Int64Slice()
		if err != nil {
			return err
		}
		if out[0] == 1 {
			writeJSON(w, http.StatusOK, grant{Token: token, Fencing: out[1], ExpiresAtMS: out[2]})
			return nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return errConflict("lock_held", fmt.Sprintf("lock %q is held", p[0]))
		}
		sleep := min(poll, left, time.Duration(out[1])*time.Millisecond+time.Millisecond)
		poll = min(2*poll, maxPoll)
		select {
		case <-time.After(sleep):
		case <-r.Context().Done():
			return r.Context().Err()
		case <-s.stop.Done():
			return errUnavailable
		}
	}
}

type renewRequest struct {
	Token *string `json:"token"`
	TTLMS *int64  `json:"ttl_ms"`
}

// lockRenew answers POST /v1/locks/{name}/renew.
func (s *Server) lockRenew(w http.ResponseWriter, r *http.Request, p []string) error {
	var req renewRequest
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	if req.Token == nil {
		return errInvalid("token is required")
	}
	ttl, err := intIn("ttl_ms", req.TTLMS, 5000, 1, 3_600_000)
	if err != nil {
		return err
	}
	exp, err := lockRenewScript.Run(r.Context(), s.rdb, lockKeys(p[0])[:1], *req.Token, ttl).Int64()
	if err != nil {
		return err
	}
	if exp < 0 {
		return errConflict("not_owner", "token does not hold the lock")
	}
	writeJSON(w, http.StatusOK, map[string]int64{"expires_at_ms": exp})
	return nil
}

type releaseRequest struct {
	Token *string `json:"token"`
}

// lockRelease answers POST /v1/locks/{name}/release.
func (s *Server) lockRelease(w http.ResponseWriter, r *http.Request, p []string) error {
	var req releaseRequest
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	if req.Token == nil {
		return errInvalid("token is required")
	}
	n, err := lockRenewScript.Run(r.Context(), s.rdb, lockKeys(p[0])[:1], *req.Token, "").Int64()
	if err != nil {
		return err
	}
	if n < 0 {
		return errConflict("not_owner", "token does not hold the lock")
	}
	writeJSON(w, http.StatusOK, map[string]bool{"released": true})
	return nil
}

type lockState struct {
	Held        bool    `json:"held"`
	Fencing     int64   `json:"fencing"`
	ExpiresAtMS *int64  `json:"expires_at_ms"`
	Owner       *string `json:"owner"`
}

// lockStatus answers GET /v1/locks/{name}.
func (s *Server) lockStatus(w http.ResponseWriter, r *http.Request, p []string) error {
	out, err := lockStatusScript.Run(r.Context(), s.rdb, lockKeys(p[0])).Slice()
	if err != nil {
		return err
	}
	st := lockState{Fencing: out[0].(int64)}
	if exp := out[1].(int64); exp >= 0 {
		st.Held, st.ExpiresAtMS = true, &exp
		if owner, ok := out[2].(string); ok {
			st.Owner = &owner
		}
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}
