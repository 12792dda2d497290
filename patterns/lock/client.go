package lock

import (
	"context"
	"fmt"
	"time"

	"github.com/durableobjects/durable"
)

// Class is the name the lock objects are registered under.
const Class = "lock"

// Limits and defaults of a lock request (api.md, "Locks").
const (
	DefaultTTL = 5 * time.Second
	MaxTTL     = time.Hour
	MaxWait    = time.Minute
	// MaxOwner is the longest owner label, in bytes.
	MaxOwner = 256
	// DefaultMaxWaiters bounds the acquires waiting for one lock; past it
	// an acquire that would wait fails with durable.ErrOverloaded.
	DefaultMaxWaiters = 10_000
)

// Client acquires, renews, releases and inspects locks by name. Each name is
// one object of the class Class. A Client is safe for concurrent use.
type Client struct {
	ns *durable.Namespace
}

// Register registers the lock class on rt (which must not be open yet) and
// returns a client for it.
func Register(rt *durable.Runtime) (*Client, error) {
	return register(rt, DefaultMaxWaiters)
}

func register(rt *durable.Runtime, maxWaiters int) (*Client, error) {
	ns, err := rt.Register(Class, func(st *durable.State) any {
		return &object{st: st, maxWaiters: maxWaiters}
	})
	if err != nil {
		return nil, err
	}
	return &Client{ns: ns}, nil
}

// AcquireRequest are the parameters of an acquire.
type AcquireRequest struct {
	// TTL is how long the grant lasts unless renewed: DefaultTTL if 0, at
	// most MaxTTL, rounded up to a whole millisecond.
	TTL time.Duration
	// Wait is how long to wait for a held lock, first come first served:
	// 0 fails at once with ErrHeld; at most MaxWait.
	Wait time.Duration
	// Owner is an optional label (at most MaxOwner bytes) that Get reports
	// while the grant is live.
	Owner *string
}

// Grant is a live hold of a lock.
type Grant struct {
	// Token proves the hold to Renew and Release: 128 random bits,
	// base64url without padding (22 characters).
	Token string
	// Fencing numbers the grants of one lock: 1 for the first, and strictly
	// increasing with every grant, across restarts.
	Fencing int64
	// ExpiresAt is when the grant ends unless renewed (millisecond precision).
	ExpiresAt time.Time
}

// Status describes a lock.
type Status struct {
	// Held reports whether an unexpired grant exists.
	Held bool
	// Fencing is the last fencing value issued (0 if none ever was).
	Fencing int64
	// ExpiresAt is the live grant's expiry; zero when not held.
	ExpiresAt time.Time
	// Owner is the live grant's owner label; nil when not held or when the
	// acquire gave none.
	Owner *string
}

// Acquire grants the lock name, waiting up to req.Wait for its holder to
// release it or let it expire. It fails with ErrHeld if the lock is still
// held when the wait runs out, ErrUnavailable if the runtime begins to
// close while it waits, and durable.ErrOverloaded if too many acquires
// already wait for the lock.
func (c *Client) Acquire(ctx context.Context, name string, req AcquireRequest) (Grant, error) {
	ttl, err := ttlMS(req.TTL)
	if err != nil {
		return Grant{}, err
	}
	if req.Wait < 0 || req.Wait > MaxWait {
		return Grant{}, fmt.Errorf("lock: wait %v out of range [0, %v]", req.Wait, MaxWait)
	}
	if req.Owner != nil && len(*req.Owner) > MaxOwner {
		return Grant{}, fmt.Errorf("lock: owner is %d bytes, over %d", len(*req.Owner), MaxOwner)
	}
	g, err := durable.Call[grantMsg](ctx, c.ns.GetByName(name), "Acquire",
		acquireArgs{TTLMS: ttl, Wait: req.Wait, Owner: req.Owner})
	if err != nil {
		return Grant{}, wrap(name, err)
	}
	return Grant{Token: g.Token, Fencing: g.Fencing, ExpiresAt: time.UnixMilli(g.ExpiresAtMS)}, nil
}

// Renew moves the expiry of the grant token holds to now + ttl (DefaultTTL
// if 0) and returns it. It fails with ErrNotOwner if token is not the live
// grant's: released, expired, or never issued.
func (c *Client) Renew(ctx context.Context, name, token string, ttl time.Duration) (time.Time, error) {
	ms, err := ttlMS(ttl)
	if err != nil {
		return time.Time{}, err
	}
	exp, err := durable.Call[int64](ctx, c.ns.GetByName(name), "Renew", renewArgs{Token: token, TTLMS: ms})
	if err != nil {
		return time.Time{}, wrap(name, err)
	}
	return time.UnixMilli(exp), nil
}

// Release ends the grant token holds; the next waiter, if any, is granted
// the lock. It fails with ErrNotOwner if token is not the live grant's.
func (c *Client) Release(ctx context.Context, name, token string) error {
	_, err := durable.Call[struct{}](ctx, c.ns.GetByName(name), "Release", token)
	return wrap(name, err)
}

// Get returns the lock's status.
func (c *Client) Get(ctx context.Context, name string) (Status, error) {
	m, err := durable.Call[statusMsg](ctx, c.ns.GetByName(name), "Status", nil)
	if err != nil {
		return Status{}, wrap(name, err)
	}
	s := Status{Held: m.Held, Fencing: m.Fencing, Owner: m.Owner}
	if m.Held {
		s.ExpiresAt = time.UnixMilli(m.ExpiresAtMS)
	}
	return s, nil
}

// ttlMS checks a TTL and returns it in whole milliseconds, rounded up.
func ttlMS(ttl time.Duration) (int64, error) {
	switch {
	case ttl == 0:
		ttl = DefaultTTL
	case ttl < 0 || ttl > MaxTTL:
		return 0, fmt.Errorf("lock: TTL %v out of range (0, %v]", ttl, MaxTTL)
	}
	return int64((ttl + time.Millisecond - 1) / time.Millisecond), nil
}

// wrap names the lock in the pattern's own errors.
func wrap(name string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("lock %q: %w", name, err)
}
