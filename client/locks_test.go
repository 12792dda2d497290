package client_test

import (
	"errors"
	"testing"
	"time"

	"github.com/durableobjects/durable/client"
)

func TestLocks(t *testing.T) {
	s := newServer(t)
	c := newClient(t, s)
	ctx := testCtx(t)

	st, err := c.GetLock(ctx, "db/primary")
	if err != nil || st.Held || st.Fencing != 0 || !st.ExpiresAt.IsZero() || st.Owner != nil {
		t.Fatalf("never held: %+v, %v", st, err)
	}
	before := time.Now()
	l, err := c.AcquireLock(ctx, "db/primary", client.AcquireOptions{TTL: 10 * time.Second, Owner: "worker-1"})
	if err != nil {
		t.Fatal(err)
	}
	if l.Name != "db/primary" || len(l.Token) < 22 || l.Fencing != 1 ||
		l.ExpiresAt.Before(before.Add(9*time.Second)) || l.ExpiresAt.After(time.Now().Add(11*time.Second)) {
		t.Fatalf("grant: %+v", l)
	}
	st, err = c.GetLock(ctx, "db/primary")
	if err != nil || !st.Held || st.Fencing != 1 || !st.ExpiresAt.Equal(l.ExpiresAt) || st.Owner == nil || *st.Owner != "worker-1" {
		t.Fatalf("held: %+v, %v", st, err)
	}
	_, err = c.AcquireLock(ctx, "db/primary", client.AcquireOptions{})
	if !errors.Is(err, client.ErrLockHeld) || !client.IsConflict(err) || errors.Is(err, client.ErrNotOwner) {
		t.Fatalf("second acquire: %v", err)
	}
	exp, err := c.RenewLock(ctx, "db/primary", l.Token, time.Minute)
	if err != nil || exp.Before(l.ExpiresAt) {
		t.Fatalf("renew: %v, %v (was %v)", exp, err, l.ExpiresAt)
	}
	if _, err := c.RenewLock(ctx, "db/primary", "not-a-token", 0); !errors.Is(err, client.ErrNotOwner) {
		t.Fatalf("renew with a wrong token: %v", err)
	}

	// A waiter gets the lock when the holder releases it.
	type result struct {
		l   *client.Lock
		err error
	}
	waited := make(chan result, 1)
	go func() {
		l, err := c.AcquireLock(ctx, "db/primary", client.AcquireOptions{Wait: 30 * time.Second})
		waited <- result{l, err}
	}()
	time.Sleep(50 * time.Millisecond) // let the waiter queue; it is granted either way
	if err := c.ReleaseLock(ctx, "db/primary", l.Token); err != nil {
		t.Fatal(err)
	}
	r := <-waited
	if r.err != nil || r.l.Fencing != 2 {
		t.Fatalf("waiter: %+v, %v", r.l, r.err)
	}
	if err := c.ReleaseLock(ctx, "db/primary", l.Token); !errors.Is(err, client.ErrNotOwner) || errors.Is(err, client.ErrUnknownOutcome) {
		t.Fatalf("release with a dead token: %v", err)
	}
	if err := c.ReleaseLock(ctx, "db/primary", r.l.Token); err != nil {
		t.Fatal(err)
	}
	st, err = c.GetLock(ctx, "db/primary")
	if err != nil || st.Held || st.Fencing != 2 || st.Owner != nil {
		t.Fatalf("released: %+v, %v", st, err)
	}

	// Expiry frees the lock.
	l, err = c.AcquireLock(ctx, "short", client.AcquireOptions{TTL: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the lock to expire", func() bool {
		st, err := c.GetLock(ctx, "short")
		return err == nil && !st.Held
	})
	if _, err := c.RenewLock(ctx, "short", l.Token, 0); !errors.Is(err, client.ErrNotOwner) {
		t.Fatalf("renew after expiry: %v", err)
	}
	if _, err := c.AcquireLock(ctx, "x", client.AcquireOptions{TTL: 2 * time.Hour}); !errors.Is(err, client.ErrInvalidArgument) {
		t.Fatalf("TTL over 1 h: %v", err)
	}
}

// A server shutting down answers a waiting acquire 503 unavailable,
// which says the request had no effect.
func TestAcquireUnavailableOnShutdown(t *testing.T) {
	s, err := startServer(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, s)
	c.Retry.MaxAttempts = 1
	ctx := testCtx(t)
	if _, err := c.AcquireLock(ctx, "l", client.AcquireOptions{TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	events := metric(t, c, "durable_events_total")
	errc := make(chan error, 1)
	go func() {
		_, err := c.AcquireLock(ctx, "l", client.AcquireOptions{Wait: time.Minute})
		errc <- err
	}()
	waitFor(t, "the acquire to reach the lock", func() bool { return metric(t, c, "durable_events_total") > events })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	err = <-errc
	var e *client.Error
	if !errors.Is(err, client.ErrUnavailable) || !client.IsTemporary(err) || !errors.As(err, &e) || e.Status != 503 || e.RetryAfter <= 0 {
		t.Fatalf("waiting acquire at shutdown: %v", err)
	}
	if errors.Is(err, client.ErrUnknownOutcome) {
		t.Fatalf("503 unavailable marked unknown outcome: %v", err)
	}
}

// "." and ".." are valid names: the client sends them escaped, so they are
// not dot segments, and each is a lock of its own.
func TestDotNames(t *testing.T) {
	s := newServer(t)
	c := newClient(t, s)
	ctx := testCtx(t)
	for _, name := range []string{".", "..", "a"} {
		l, err := c.AcquireLock(ctx, name, client.AcquireOptions{TTL: 10 * time.Second})
		if err != nil {
			t.Fatalf("acquire %q: %v", name, err)
		}
		if l.Name != name || l.Fencing != 1 {
			t.Fatalf("acquire %q: %+v (another name's lock?)", name, l)
		}
		if st, err := c.GetLock(ctx, name); err != nil || !st.Held {
			t.Fatalf("get %q: %+v, %v", name, st, err)
		}
	}
	if _, err := c.CreateSession(ctx, client.CreateSessionRequest{UserID: ".."}); err != nil {
		t.Fatalf("session of user ..: %v", err)
	}
	if list, err := c.ListUserSessions(ctx, ".."); err != nil || len(list) != 1 {
		t.Fatalf("sessions of user ..: %v, %v", list, err)
	}
}

// A negative duration under a millisecond is still negative: refused by
// the server, not sent as 0 (which would mean the default).
func TestSubMillisecondNegativeDurationsAreRefused(t *testing.T) {
	s := newServer(t)
	c := newClient(t, s)
	ctx := testCtx(t)
	if _, err := c.AcquireLock(ctx, "l", client.AcquireOptions{TTL: -time.Microsecond}); !errors.Is(err, client.ErrInvalidArgument) {
		t.Fatalf("acquire with a TTL of -1µs: %v", err)
	}
	if _, err := c.CreateSession(ctx, client.CreateSessionRequest{UserID: "u", TTL: -time.Nanosecond}); !errors.Is(err, client.ErrInvalidArgument) {
		t.Fatalf("session with a TTL of -1ns: %v", err)
	}
}
