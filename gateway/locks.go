package gateway

import (
	"net/http"
	"time"

	"github.com/durableobjects/durable/patterns/lock"
)

// Ranges of the locks routes' fields (api.md, "Locks"), in milliseconds.
const (
	lockMinTTLMS     = 1
	lockMaxTTLMS     = int64(lock.MaxTTL / time.Millisecond)
	lockDefaultTTLMS = int64(lock.DefaultTTL / time.Millisecond)
	lockMaxWaitMS    = int64(lock.MaxWait / time.Millisecond)
)

type lockAcquireRequest struct {
	TTLMS  *int64  `json:"ttl_ms"`
	WaitMS *int64  `json:"wait_ms"`
	Owner  *string `json:"owner"`
}

type lockRenewRequest struct {
	Token *string `json:"token"`
	TTLMS *int64  `json:"ttl_ms"`
}

type lockReleaseRequest struct {
	Token *string `json:"token"`
}

type lockGrantResponse struct {
	Token       string `json:"token"`
	Fencing     int64  `json:"fencing"`
	ExpiresAtMS int64  `json:"expires_at_ms"`
}

type lockRenewResponse struct {
	ExpiresAtMS int64 `json:"expires_at_ms"`
}

type lockReleaseResponse struct {
	Released bool `json:"released"`
}

type lockStatusResponse struct {
	Held        bool    `json:"held"`
	Fencing     int64   `json:"fencing"`
	ExpiresAtMS *int64  `json:"expires_at_ms"`
	Owner       *string `json:"owner"`
}

// setupLocks registers the locks routes of api.md.
func (g *Gateway) setupLocks() error {
	locks, err := lock.Register(g.rt)
	if err != nil {
		return err
	}

	g.handle("POST /v1/locks/{name}/acquire", func(w http.ResponseWriter, r *http.Request) error {
		name, err := pathParam(r, "name")
		if err != nil {
			return err
		}
		var req lockAcquireRequest
		if err := decodeJSON(w, r, g.cfg.MaxBody, &req); err != nil {
			return err
		}
		ttl, err := lockTTL(req.TTLMS)
		if err != nil {
			return err
		}
		wait, err := lockIntField("wait_ms", req.WaitMS, 0, 0, lockMaxWaitMS)
		if err != nil {
			return err
		}
		if req.Owner != nil && len(*req.Owner) > lock.MaxOwner {
			return invalid("owner is %d bytes, over %d", len(*req.Owner), lock.MaxOwner)
		}
		grant, err := locks.Acquire(r.Context(), name, lock.AcquireRequest{
			TTL:   ttl,
			Wait:  time.Duration(wait) * time.Millisecond,
			Owner: req.Owner,
		})
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, lockGrantResponse{Token: grant.Token, Fencing: grant.Fencing, ExpiresAtMS: grant.ExpiresAt.UnixMilli()})
		return nil
	})

	g.handle("POST /v1/locks/{name}/renew", func(w http.ResponseWriter, r *http.Request) error {
		name, err := pathParam(r, "name")
		if err != nil {
			return err
		}
		var req lockRenewRequest
		if err := decodeJSON(w, r, g.cfg.MaxBody, &req); err != nil {
			return err
		}
		if req.Token == nil {
			return invalid("token is required")
		}
		ttl, err := lockTTL(req.TTLMS)
		if err != nil {
			return err
		}
		exp, err := locks.Renew(r.Context(), name, *req.Token, ttl)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, lockRenewResponse{ExpiresAtMS: exp.UnixMilli()})
		return nil
	})

	g.handle("POST /v1/locks/{name}/release", func(w http.ResponseWriter, r *http.Request) error {
		name, err := pathParam(r, "name")
		if err != nil {
			return err
		}
		var req lockReleaseRequest
		if err := decodeJSON(w, r, g.cfg.MaxBody, &req); err != nil {
			return err
		}
		if req.Token == nil {
			return invalid("token is required")
		}
		if err := locks.Release(r.Context(), name, *req.Token); err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, lockReleaseResponse{Released: true})
		return nil
	})

	g.handle("GET /v1/locks/{name}", func(w http.ResponseWriter, r *http.Request) error {
		name, err := pathParam(r, "name")
		if err != nil {
			return err
		}
		st, err := locks.Get(r.Context(), name)
		if err != nil {
			return err
		}
		resp := lockStatusResponse{Held: st.Held, Fencing: st.Fencing}
		if st.Held {
			exp := st.ExpiresAt.UnixMilli()
			resp.ExpiresAtMS, resp.Owner = &exp, st.Owner
		}
		writeJSON(w, http.StatusOK, resp)
		return nil
	})
	return nil
}

// lockTTL checks ttl_ms (default 5000) and returns it as a duration.
func lockTTL(v *int64) (time.Duration, error) {
	ms, err := lockIntField("ttl_ms", v, lockDefaultTTLMS, lockMinTTLMS, lockMaxTTLMS)
	return time.Duration(ms) * time.Millisecond, err
}

// lockIntField applies an integer field's default and checks its range.
func lockIntField(name string, v *int64, def, lo, hi int64) (int64, error) {
	if v == nil {
		return def, nil
	}
	if *v < lo || *v > hi {
		return 0, invalid("%s is %d, want %d..%d", name, *v, lo, hi)
	}
	return *v, nil
}
