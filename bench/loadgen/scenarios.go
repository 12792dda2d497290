package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
)

// Rate-limit parameters: a limit so high that every check is allowed, so
// the scenarios measure the check, not the denial path.
const (
	benchLimit    = 1_000_000_000
	benchWindowMS = 60_000
	// RateLimitKeys is the number of keys ratelimit-10k spreads checks over.
	RateLimitKeys = 10_000
	// SessionUsers is the number of users session-create spreads sessions over.
	SessionUsers = 10_000
	// SessionPool is the number of sessions session-get creates in its setup.
	SessionPool = 1_000
)

var rateLimitBody = fmt.Appendf(nil, `{"limit":%d,"window_ms":%d}`, benchLimit, benchWindowMS)

var ratelimitOne = Scenario{
	Name:          "ratelimit-one",
	Description:   "POST /v1/ratelimit/{key}/check on one key (sliding_log, limit 1e9, window 60 s: always allowed)",
	RequestsPerOp: 1,
	Prepare: func(ctx context.Context, env Env) (func(int) Op, error) {
		path := "/v1/ratelimit/" + runName(env.Seed, "one") + "/check"
		return func(int) Op {
			return func(ctx context.Context, c *Client) error {
				return c.Do(ctx, http.MethodPost, path, rateLimitBody, http.StatusOK, nil)
			}
		}, nil
	},
}

var ratelimit10k = Scenario{
	Name:          "ratelimit-10k",
	Description:   "POST /v1/ratelimit/{key}/check on a key drawn uniformly from 10,000 (sliding_log, limit 1e9, window 60 s)",
	RequestsPerOp: 1,
	Prepare: func(ctx context.Context, env Env) (func(int) Op, error) {
		paths := make([]string, RateLimitKeys)
		for i := range paths {
			paths[i] = "/v1/ratelimit/" + runName(env.Seed, fmt.Sprint(i)) + "/check"
		}
		return func(w int) Op {
			rng := rand.New(rand.NewPCG(env.Seed, uint64(w)))
			return func(ctx context.Context, c *Client) error {
				return c.Do(ctx, http.MethodPost, paths[rng.IntN(len(paths))], rateLimitBody, http.StatusOK, nil)
			}
		}, nil
	},
}

var lockCycle = Scenario{
	Name:          "lock-cycle",
	Description:   "acquire then release a lock of the worker's own (one op = 2 requests; latency is per cycle)",
	RequestsPerOp: 2,
	Prepare: func(ctx context.Context, env Env) (func(int) Op, error) {
		acquireBody := []byte(`{"ttl_ms":5000,"owner":"loadgen"}`)
		return func(w int) Op {
			base := "/v1/locks/" + runName(env.Seed, fmt.Sprint("lock-", w))
			return func(ctx context.Context, c *Client) error {
				var grant struct {
					Token string `json:"token"`
				}
				if err := c.Do(ctx, http.MethodPost, base+"/acquire", acquireBody, http.StatusOK, &grant); err != nil {
					return err
				}
				body, err := json.Marshal(map[string]string{"token": grant.Token})
				if err != nil {
					return err
				}
				return c.Do(ctx, http.MethodPost, base+"/release", body, http.StatusOK, nil)
			}
		}, nil
	},
}

var sessionCreate = Scenario{
	Name:          "session-create",
	Description:   "POST /v1/sessions for a user drawn from 10,000, with a small data object",
	RequestsPerOp: 1,
	Prepare: func(ctx context.Context, env Env) (func(int) Op, error) {
		return func(w int) Op {
			rng := rand.New(rand.NewPCG(env.Seed, uint64(w)))
			return func(ctx context.Context, c *Client) error {
				return c.Do(ctx, http.MethodPost, "/v1/sessions", sessionBody(env.Seed, rng.IntN(SessionUsers)), http.StatusCreated, nil)
			}
		}, nil
	},
}

var sessionGet = Scenario{
	Name:          "session-get",
	Description:   "GET /v1/sessions/{id} on an id drawn from 1,000 sessions created during setup",
	RequestsPerOp: 1,
	Prepare: func(ctx context.Context, env Env) (func(int) Op, error) {
		ids, err := createSessions(ctx, env, SessionPool)
		if err != nil {
			return nil, err
		}
		paths := make([]string, len(ids))
		for i, id := range ids {
			paths[i] = "/v1/sessions/" + url.PathEscape(id)
		}
		return func(w int) Op {
			rng := rand.New(rand.NewPCG(env.Seed, uint64(w)))
			return func(ctx context.Context, c *Client) error {
				return c.Do(ctx, http.MethodGet, paths[rng.IntN(len(paths))], nil, http.StatusOK, nil)
			}
		}, nil
	},
}

func sessionBody(seed uint64, user int) []byte {
	return fmt.Appendf(nil, `{"user_id":%q,"data":{"cart":[1,2,3],"theme":"dark"},"ttl_ms":3600000}`,
		runName(seed, fmt.Sprint("user-", user)))
}

// createSessions makes n sessions with env.Conns concurrent requests and
// returns their ids.
func createSessions(ctx context.Context, env Env, n int) ([]string, error) {
	ids := make([]string, n)
	errs := make([]error, env.Conns)
	var wg sync.WaitGroup
	for w := range env.Conns {
		wg.Go(func() {
			for i := w; i < n; i += env.Conns {
				var s struct {
					ID string `json:"id"`
				}
				if err := env.Client.Do(ctx, http.MethodPost, "/v1/sessions", sessionBody(env.Seed, i), http.StatusCreated, &s); err != nil {
					errs[w] = err
					return
				}
				if s.ID == "" {
					errs[w] = fmt.Errorf("POST /v1/sessions: answer has no id")
					return
				}
				ids[i] = s.ID
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("create sessions: %w", err)
		}
	}
	return ids, nil
}

// runName makes a path parameter unique to this run, so runs against the
// same server do not share keys, locks or users.
func runName(seed uint64, suffix string) string {
	return fmt.Sprintf("bench-%x-%s", seed&0xffffffff, suffix)
}
