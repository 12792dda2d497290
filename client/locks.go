package client

import (
	"context"
	"net/http"
	"time"
)

// AcquireOptions are the optional fields of a lock acquire.
type AcquireOptions struct {
	// TTL is how long the lock is held unless renewed, 1 ms..1 h, sent in
	// whole milliseconds (rounded up); 0 sends none (the server's default,
	// 5 s).
	TTL time.Duration
	// Wait is how long to queue (first come, first served) while the lock
	// is held, up to 60 s; 0 fails at once with ErrLockHeld.
	Wait time.Duration
	// Owner is a label shown by GetLock; "" sends none.
	Owner string
}

// Lock is a granted lock.
type Lock struct {
	Name  string
	Token string // proves ownership to RenewLock and ReleaseLock
	// Fencing strictly increases with every grant of this name, across
	// restarts: pass it to the resource the lock protects so it can
	// refuse a stale holder.
	Fencing   int64
	ExpiresAt time.Time
}

// LockStatus is what GetLock reports.
type LockStatus struct {
	Held bool
	// Fencing is the last fencing value issued (0 if never).
	Fencing int64
	// ExpiresAt is the holder's expiry; zero when not held.
	ExpiresAt time.Time
	// Owner is the holder's label; nil when not held or unlabelled.
	Owner *string
}

type acquireBody struct {
	TTLMS  int64  `json:"ttl_ms,omitempty"`
	WaitMS int64  `json:"wait_ms,omitempty"`
	Owner  string `json:"owner,omitempty"`
}

// AcquireLock takes the lock name: POST /v1/locks/{name}/acquire. A lock
// still held when opts.Wait runs out is ErrLockHeld; a server shutting
// down while the acquire waits answers ErrUnavailable (retried).
//
// Retries: after a 503 overloaded/unavailable or a failed dial only. A
// connection error once the request may have been sent is returned (with
// ErrUnknownOutcome), never retried: the server may have granted the lock
// to a token this client never saw, and a second acquire would then wait
// behind (or be refused by) its own lost grant, or hold the name twice
// over in the caller's mind. The lost grant expires after its TTL, so keep
// TTLs short and renew.
func (c *Client) AcquireLock(ctx context.Context, name string, opts AcquireOptions) (*Lock, error) {
	n, err := seg("name", name)
	if err != nil {
		return nil, err
	}
	var out struct {
		Token       string `json:"token"`
		Fencing     int64  `json:"fencing"`
		ExpiresAtMS int64  `json:"expires_at_ms"`
	}
	r := &request{method: http.MethodPost, path: "/v1/locks/" + n + "/acquire", safety: once,
		body: acquireBody{TTLMS: ms(opts.TTL), WaitMS: ms(opts.Wait), Owner: opts.Owner}}
	if err := c.call(ctx, r, http.StatusOK, &out); err != nil {
		return nil, err
	}
	return &Lock{Name: name, Token: out.Token, Fencing: out.Fencing, ExpiresAt: fromMS(out.ExpiresAtMS)}, nil
}

// RenewLock extends the lock name held with token to now + ttl (0 sends
// none: the server's default, 5 s) and returns the new expiry:
// POST /v1/locks/{name}/renew. A dead token (released, expired, or
// another's) is ErrNotOwner.
//
// Retries: also after ambiguous connection errors. Renewing twice with
// the same token is harmless: the second sets the expiry to its own
// now + ttl, a little later than the first. If the lock expired between
// the lost attempt and the retry, the answer is ErrNotOwner (marked
// ErrUnknownOutcome), which is the truth by then.
func (c *Client) RenewLock(ctx context.Context, name, token string, ttl time.Duration) (time.Time, error) {
	n, err := seg("name", name)
	if err != nil {
		return time.Time{}, err
	}
	body := struct {
		Token string `json:"token"`
		TTLMS int64  `json:"ttl_ms,omitempty"`
	}{token, ms(ttl)}
	var out struct {
		ExpiresAtMS int64 `json:"expires_at_ms"`
	}
	r := &request{method: http.MethodPost, path: "/v1/locks/" + n + "/renew", safety: idempotent, body: body}
	if err := c.call(ctx, r, http.StatusOK, &out); err != nil {
		return time.Time{}, err
	}
	return fromMS(out.ExpiresAtMS), nil
}

// ReleaseLock frees the lock name held with token:
// POST /v1/locks/{name}/release. A dead token (released, expired, or
// another's) is ErrNotOwner.
//
// Retries: also after ambiguous connection errors: a second release with
// the same token cannot free anyone else's lock (a token is dead once
// released). If the lost attempt did release, the retry answers
// ErrNotOwner marked with ErrUnknownOutcome: the lock is free either way,
// but the client cannot tell a release that worked from a lock that had
// already expired.
func (c *Client) ReleaseLock(ctx context.Context, name, token string) error {
	n, err := seg("name", name)
	if err != nil {
		return err
	}
	body := struct {
		Token string `json:"token"`
	}{token}
	r := &request{method: http.MethodPost, path: "/v1/locks/" + n + "/release", safety: idempotent, body: body}
	return c.call(ctx, r, http.StatusOK, nil)
}

// GetLock reports the state of the lock name: GET /v1/locks/{name}.
// Retried after any retryable failure (a read).
func (c *Client) GetLock(ctx context.Context, name string) (*LockStatus, error) {
	n, err := seg("name", name)
	if err != nil {
		return nil, err
	}
	var out struct {
		Held        bool    `json:"held"`
		Fencing     int64   `json:"fencing"`
		ExpiresAtMS *int64  `json:"expires_at_ms"`
		Owner       *string `json:"owner"`
	}
	r := &request{method: http.MethodGet, path: "/v1/locks/" + n, safety: idempotent}
	if err := c.call(ctx, r, http.StatusOK, &out); err != nil {
		return nil, err
	}
	st := &LockStatus{Held: out.Held, Fencing: out.Fencing, Owner: out.Owner}
	if out.ExpiresAtMS != nil {
		st.ExpiresAt = fromMS(*out.ExpiresAtMS)
	}
	return st, nil
}
