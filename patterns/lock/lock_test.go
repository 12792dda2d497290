package lock

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/durableobjects/durable"
	"github.com/durableobjects/durable/durabletest"
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

type env struct {
	rt    *durable.Runtime
	c     *Client
	clock *durabletest.Clock // nil on the real clock
	dir   string
}

type envOption func(*durable.Runtime)

func withClock(c *durabletest.Clock) envOption { return func(rt *durable.Runtime) { rt.Clock = c } }

// newEnv opens a runtime on dir (a new one if "") with the lock class.
func newEnv(t testing.TB, dir string, maxWaiters int, opts ...envOption) *env {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	rt := durable.NewRuntime(dir)
	for _, o := range opts {
		o(rt)
	}
	c, err := register(rt, maxWaiters)
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Open(); err != nil {
		t.Fatal(err)
	}
	e := &env{rt: rt, c: c, dir: dir}
	e.clock, _ = rt.Clock.(*durabletest.Clock)
	t.Cleanup(func() { e.close(t) })
	return e
}

func (e *env) close(t testing.TB) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.rt.Close(ctx); err != nil {
		t.Errorf("close: %v", err)
	}
}

func ptr[T any](v T) *T { return &v }

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

type result struct {
	g   Grant
	err error
}

// acquireAsync starts an acquire and returns where its result arrives.
func (e *env) acquireAsync(ctx context.Context, name string, req AcquireRequest) chan result {
	ch := make(chan result, 1)
	go func() {
		g, err := e.c.Acquire(ctx, name, req)
		ch <- result{g, err}
	}()
	return ch
}

// startWaiter starts an acquire that must wait, and returns once it waits
// (its deadline timer is armed on the fake clock).
func (e *env) startWaiter(t *testing.T, name string, req AcquireRequest) chan result {
	t.Helper()
	deadline := e.clock.Now().Add(req.Wait)
	if e.clock.HasTimer(deadline) {
		t.Fatalf("another timer is due at the waiter's deadline %v: pick another wait", deadline)
	}
	ch := e.acquireAsync(context.Background(), name, req)
	waitFor(t, "the acquire to wait", func() bool {
		if len(ch) > 0 {
			r := <-ch
			t.Fatalf("the acquire answered instead of waiting: %+v", r)
		}
		return e.clock.HasTimer(deadline)
	})
	return ch
}

func recv(t *testing.T, ch chan result) result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no answer from the acquire")
		return result{}
	}
}

// pending fails the test if ch has an answer. A waiter answers only after
// an event in the gate decided for it, so this is a real check: the test
// runs further events of the object after it and before looking again.
func pending(t *testing.T, ch chan result, what string) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("%s answered early: %+v", what, r)
	default:
	}
}

func mustAcquire(t *testing.T, e *env, name string, req AcquireRequest) Grant {
	t.Helper()
	g, err := e.c.Acquire(context.Background(), name, req)
	if err != nil {
		t.Fatalf("acquire %s: %v", name, err)
	}
	return g
}

func status(t *testing.T, e *env, name string) Status {
	t.Helper()
	s, err := e.c.Get(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAcquireRenewRelease(t *testing.T) {
	clock := durabletest.NewClock(t0)
	e := newEnv(t, "", DefaultMaxWaiters, withClock(clock))
	ctx := context.Background()

	if s := status(t, e, "a"); s != (Status{}) {
		t.Fatalf("never-used lock: %+v", s)
	}
	g := mustAcquire(t, e, "a", AcquireRequest{TTL: 10 * time.Second, Owner: ptr("worker-1")})
	if g.Fencing != 1 || !g.ExpiresAt.Equal(t0.Add(10*time.Second)) {
		t.Fatalf("grant %+v", g)
	}
	if raw, err := base64.RawURLEncoding.DecodeString(g.Token); err != nil || len(raw) < 16 || len(g.Token) < 22 {
		t.Fatalf("token %q is not ≥128 bits of base64url: %v", g.Token, err)
	}
	s := status(t, e, "a")
	if !s.Held || s.Fencing != 1 || !s.ExpiresAt.Equal(g.ExpiresAt) || s.Owner == nil || *s.Owner != "worker-1" {
		t.Fatalf("status %+v", s)
	}
	if _, err := e.c.Acquire(ctx, "a", AcquireRequest{}); !errors.Is(err, ErrHeld) {
		t.Fatalf("second acquire: %v, want ErrHeld", err)
	}
	// Another name is another lock.
	if g2 := mustAcquire(t, e, "b", AcquireRequest{}); g2.Fencing != 1 || g2.Token == g.Token {
		t.Fatalf("lock b: %+v", g2)
	}

	clock.Advance(4 * time.Second)
	exp, err := e.c.Renew(ctx, "a", g.Token, 20*time.Second)
	if err != nil || !exp.Equal(t0.Add(24*time.Second)) {
		t.Fatalf("renew = %v, %v", exp, err)
	}
	if s := status(t, e, "a"); !s.ExpiresAt.Equal(exp) || s.Fencing != 1 {
		t.Fatalf("status after renew %+v", s)
	}
	// Renew may shorten, and defaults to DefaultTTL.
	if exp, err := e.c.Renew(ctx, "a", g.Token, 0); err != nil || !exp.Equal(clock.Now().Add(DefaultTTL)) {
		t.Fatalf("renew with the default TTL = %v, %v", exp, err)
	}

	for _, bad := range []string{"", "x", g.Token + "x", g.Token[:21]} {
		if _, err := e.c.Renew(ctx, "a", bad, time.Second); !errors.Is(err, ErrNotOwner) {
			t.Fatalf("renew with %q: %v, want ErrNotOwner", bad, err)
		}
		if err := e.c.Release(ctx, "a", bad); !errors.Is(err, ErrNotOwner) {
			t.Fatalf("release with %q: %v, want ErrNotOwner", bad, err)
		}
	}
	if err := e.c.Release(ctx, "b", g.Token); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("release of b with a's token: %v", err)
	}

	if err := e.c.Release(ctx, "a", g.Token); err != nil {
		t.Fatal(err)
	}
	if s := status(t, e, "a"); s.Held || s.Fencing != 1 || !s.ExpiresAt.IsZero() || s.Owner != nil {
		t.Fatalf("status after release %+v", s)
	}
	// A released token is dead.
	if err := e.c.Release(ctx, "a", g.Token); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("second release: %v", err)
	}
	if _, err := e.c.Renew(ctx, "a", g.Token, time.Second); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("renew after release: %v", err)
	}
	g3 := mustAcquire(t, e, "a", AcquireRequest{})
	if g3.Fencing != 2 || g3.Token == g.Token || !g3.ExpiresAt.Equal(clock.Now().Add(DefaultTTL)) {
		t.Fatalf("third grant %+v", g3)
	}
	if s := status(t, e, "a"); s.Owner != nil {
		t.Fatalf("owner without a label: %q", *s.Owner)
	}
	// An empty label is a label.
	if err := e.c.Release(ctx, "a", g3.Token); err != nil {
		t.Fatal(err)
	}
	mustAcquire(t, e, "a", AcquireRequest{Owner: ptr("")})
	if s := status(t, e, "a"); s.Owner == nil || *s.Owner != "" || s.Fencing != 3 {
		t.Fatalf("status with an empty label %+v", s)
	}
}

func TestExpiry(t *testing.T) {
	clock := durabletest.NewClock(t0)
	e := newEnv(t, "", DefaultMaxWaiters, withClock(clock))
	ctx := context.Background()
	g := mustAcquire(t, e, "a", AcquireRequest{TTL: time.Second, Owner: ptr("o")})

	clock.Advance(999 * time.Millisecond)
	if s := status(t, e, "a"); !s.Held {
		t.Fatal("free 1 ms before its expiry")
	}
	if _, err := e.c.Acquire(ctx, "a", AcquireRequest{}); !errors.Is(err, ErrHeld) {
		t.Fatalf("acquire 1 ms before expiry: %v", err)
	}
	clock.Advance(time.Millisecond) // now == expires_at: free
	if s := status(t, e, "a"); s.Held || s.Fencing != 1 || s.Owner != nil || !s.ExpiresAt.IsZero() {
		t.Fatalf("status at expiry %+v", s)
	}
	if _, err := e.c.Renew(ctx, "a", g.Token, time.Second); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("renew of an expired grant: %v", err)
	}
	if err := e.c.Release(ctx, "a", g.Token); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("release of an expired grant: %v", err)
	}
	g2 := mustAcquire(t, e, "a", AcquireRequest{TTL: time.Millisecond})
	if g2.Fencing != 2 {
		t.Fatalf("grant after expiry %+v", g2)
	}
	// Sub-millisecond TTLs round up to 1 ms.
	clock.Advance(time.Millisecond)
	if g3 := mustAcquire(t, e, "a", AcquireRequest{TTL: time.Nanosecond}); !g3.ExpiresAt.Equal(clock.Now().Add(time.Millisecond)) {
		t.Fatalf("1 ns TTL: %+v", g3)
	}
}

func TestClientChecksLimits(t *testing.T) {
	e := newEnv(t, "", DefaultMaxWaiters)
	ctx := context.Background()
	for _, req := range []AcquireRequest{
		{TTL: -time.Millisecond},
		{TTL: MaxTTL + time.Nanosecond},
		{Wait: -time.Millisecond},
		{Wait: MaxWait + time.Nanosecond},
		{Owner: ptr(string(make([]byte, MaxOwner+1)))},
	} {
		if _, err := e.c.Acquire(ctx, "a", req); err == nil || errors.Is(err, ErrHeld) {
			t.Errorf("acquire %+v: %v, want a range error", req, err)
		}
	}
	if _, err := e.c.Acquire(ctx, "a", AcquireRequest{TTL: MaxTTL, Owner: ptr(string(make([]byte, MaxOwner)))}); err != nil {
		t.Fatalf("acquire at the limits: %v", err)
	}
	if _, err := e.c.Renew(ctx, "a", "t", MaxTTL+1); err == nil || errors.Is(err, ErrNotOwner) {
		t.Fatalf("renew over MaxTTL: %v", err)
	}
	if _, err := e.c.Acquire(ctx, "b", AcquireRequest{Wait: MaxWait}); err != nil {
		t.Fatalf("acquire with the longest wait: %v", err)
	}
}

func TestWaiterGetsTheLockOnRelease(t *testing.T) {
	clock := durabletest.NewClock(t0)
	e := newEnv(t, "", DefaultMaxWaiters, withClock(clock))
	ctx := context.Background()
	g := mustAcquire(t, e, "a", AcquireRequest{TTL: time.Minute})
	w := e.startWaiter(t, "a", AcquireRequest{TTL: 3 * time.Second, Wait: 10 * time.Second, Owner: ptr("waiter")})

	// Other events run while the waiter waits: status, renew, a second
	// acquire that gives up at once, another lock.
	if s := status(t, e, "a"); !s.Held || s.Fencing != 1 {
		t.Fatalf("status while waiting %+v", s)
	}
	if _, err := e.c.Renew(ctx, "a", g.Token, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.Acquire(ctx, "a", AcquireRequest{}); !errors.Is(err, ErrHeld) {
		t.Fatalf("acquire without wait: %v", err)
	}
	mustAcquire(t, e, "other", AcquireRequest{})
	pending(t, w, "the waiter")

	clock.Advance(time.Second)
	if err := e.c.Release(ctx, "a", g.Token); err != nil {
		t.Fatal(err)
	}
	r := recv(t, w)
	if r.err != nil || r.g.Fencing != 2 || !r.g.ExpiresAt.Equal(clock.Now().Add(3*time.Second)) {
		t.Fatalf("waiter: %+v", r)
	}
	if s := status(t, e, "a"); !s.Held || s.Fencing != 2 || *s.Owner != "waiter" {
		t.Fatalf("status after the hand-off %+v", s)
	}
	if err := e.c.Release(ctx, "a", r.g.Token); err != nil {
		t.Fatal(err)
	}
}

func TestWaitersAreServedInOrder(t *testing.T) {
	clock := durabletest.NewClock(t0)
	e := newEnv(t, "", DefaultMaxWaiters, withClock(clock))
	ctx := context.Background()
	holder := mustAcquire(t, e, "a", AcquireRequest{TTL: time.Hour})
	const n = 5
	var ws []chan result
	for i := range n {
		// Distinct waits so each waiter's timer is told apart.
		ws = append(ws, e.startWaiter(t, "a", AcquireRequest{TTL: time.Hour, Wait: 30*time.Second + time.Duration(i)*time.Millisecond, Owner: ptr(fmt.Sprint(i))}))
	}
	token := holder.Token
	for i, w := range ws {
		for _, later := range ws[i:] {
			pending(t, later, "a later waiter")
		}
		if err := e.c.Release(ctx, "a", token); err != nil {
			t.Fatal(err)
		}
		r := recv(t, w)
		if r.err != nil || r.g.Fencing != int64(i+2) {
			t.Fatalf("waiter %d: %+v", i, r)
		}
		if s := status(t, e, "a"); *s.Owner != fmt.Sprint(i) {
			t.Fatalf("waiter %d: owner %q", i, *s.Owner)
		}
		token = r.g.Token
	}
}

func TestWaiterGetsTheLockOnExpiry(t *testing.T) {
	clock := durabletest.NewClock(t0)
	e := newEnv(t, "", DefaultMaxWaiters, withClock(clock))
	mustAcquire(t, e, "a", AcquireRequest{TTL: 2 * time.Second})
	w1 := e.startWaiter(t, "a", AcquireRequest{TTL: 2 * time.Second, Wait: 10 * time.Second})
	w2 := e.startWaiter(t, "a", AcquireRequest{TTL: time.Second, Wait: 10*time.Second + time.Millisecond})

	// The alarm at the holder's expiry hands the lock on: no other call
	// is needed.
	exp := t0.Add(2 * time.Second)
	waitFor(t, "the alarm timer", func() bool { return clock.HasTimer(exp) })
	clock.Set(exp.Add(-time.Millisecond))
	status(t, e, "a") // an event runs; the lock is still held
	pending(t, w1, "the first waiter")
	clock.Set(exp)
	r := recv(t, w1)
	if r.err != nil || r.g.Fencing != 2 || !r.g.ExpiresAt.Equal(exp.Add(2*time.Second)) {
		t.Fatalf("first waiter: %+v", r)
	}
	// And again, at the first waiter's expiry.
	exp = r.g.ExpiresAt
	waitFor(t, "the alarm timer", func() bool { return clock.HasTimer(exp) })
	pending(t, w2, "the second waiter")
	clock.Set(exp)
	if r := recv(t, w2); r.err != nil || r.g.Fencing != 3 || !r.g.ExpiresAt.Equal(exp.Add(time.Second)) {
		t.Fatalf("second waiter: %+v", r)
	}
}

// A waiter whose deadline and the holder's expiry both pass before any
// event runs still gets the lock: the lock came free in time.
func TestWaiterInTimeEvenIfTheAlarmIsLate(t *testing.T) {
	clock := durabletest.NewClock(t0)
	e := newEnv(t, "", DefaultMaxWaiters, withClock(clock))
	mustAcquire(t, e, "a", AcquireRequest{TTL: 2 * time.Second})
	w := e.startWaiter(t, "a", AcquireRequest{Wait: 3 * time.Second})
	clock.Advance(time.Minute)
	if r := recv(t, w); r.err != nil || r.g.Fencing != 2 || !r.g.ExpiresAt.Equal(clock.Now().Add(DefaultTTL)) {
		t.Fatalf("waiter: %+v", r)
	}
}

func TestWaiterTimesOut(t *testing.T) {
	clock := durabletest.NewClock(t0)
	e := newEnv(t, "", DefaultMaxWaiters, withClock(clock))
	ctx := context.Background()
	holder := mustAcquire(t, e, "a", AcquireRequest{TTL: 5 * time.Second})
	w1 := e.startWaiter(t, "a", AcquireRequest{Wait: 2 * time.Second})
	w2 := e.startWaiter(t, "a", AcquireRequest{Wait: 4 * time.Second})
	clock.Advance(2*time.Second - time.Millisecond)
	status(t, e, "a")
	pending(t, w1, "the first waiter")
	clock.Advance(time.Millisecond)
	if r := recv(t, w1); !errors.Is(r.err, ErrHeld) {
		t.Fatalf("first waiter: %+v, want ErrHeld", r)
	}
	// The lock comes free exactly when the second wait runs out: too late.
	clock.Advance(time.Second)
	if _, err := e.c.Renew(ctx, "a", holder.Token, time.Second); err != nil { // expires at t0+4s
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	if r := recv(t, w2); !errors.Is(r.err, ErrHeld) {
		t.Fatalf("second waiter: %+v, want ErrHeld", r)
	}
	// Nobody holds the lock now, and the waiters' grants never happened.
	if s := status(t, e, "a"); s.Held || s.Fencing != 1 {
		t.Fatalf("status %+v", s)
	}
}

func TestTimedOutWaiterDoesNotBlockTheNext(t *testing.T) {
	clock := durabletest.NewClock(t0)
	e := newEnv(t, "", DefaultMaxWaiters, withClock(clock))
	holder := mustAcquire(t, e, "a", AcquireRequest{TTL: time.Hour})
	w1 := e.startWaiter(t, "a", AcquireRequest{Wait: 1500 * time.Millisecond})
	w2 := e.startWaiter(t, "a", AcquireRequest{Wait: time.Minute})
	clock.Advance(2 * time.Second)
	if r := recv(t, w1); !errors.Is(r.err, ErrHeld) {
		t.Fatalf("first waiter: %+v", r)
	}
	if err := e.c.Release(context.Background(), "a", holder.Token); err != nil {
		t.Fatal(err)
	}
	if r := recv(t, w2); r.err != nil || r.g.Fencing != 2 {
		t.Fatalf("second waiter: %+v", r)
	}
}

func TestCanceledWaiterLeaves(t *testing.T) {
	clock := durabletest.NewClock(t0)
	e := newEnv(t, "", DefaultMaxWaiters, withClock(clock))
	holder := mustAcquire(t, e, "a", AcquireRequest{TTL: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	deadline := clock.Now().Add(time.Minute)
	if clock.HasTimer(deadline) {
		t.Fatal("another timer is due at the waiter's deadline")
	}
	w1 := e.acquireAsync(ctx, "a", AcquireRequest{Wait: time.Minute})
	waitFor(t, "the acquire to wait", func() bool { return clock.HasTimer(deadline) })
	w2 := e.startWaiter(t, "a", AcquireRequest{Wait: 50*time.Second + time.Millisecond})
	cancel()
	if r := recv(t, w1); !errors.Is(r.err, context.Canceled) {
		t.Fatalf("canceled waiter: %+v", r)
	}
	if err := e.c.Release(context.Background(), "a", holder.Token); err != nil {
		t.Fatal(err)
	}
	if r := recv(t, w2); r.err != nil || r.g.Fencing != 2 {
		t.Fatalf("second waiter: %+v", r)
	}
}

func TestClosingEndsWaits(t *testing.T) {
	clock := durabletest.NewClock(t0)
	e := newEnv(t, "", DefaultMaxWaiters, withClock(clock))
	ctx := context.Background()
	holder := mustAcquire(t, e, "a", AcquireRequest{TTL: time.Hour})
	w1 := e.startWaiter(t, "a", AcquireRequest{Wait: time.Minute})
	w2 := e.startWaiter(t, "a", AcquireRequest{Wait: 50*time.Second + time.Millisecond})
	e.rt.BeginClose()
	for _, w := range []chan result{w1, w2} {
		if r := recv(t, w); !errors.Is(r.err, ErrUnavailable) {
			t.Fatalf("waiter at shutdown: %+v, want ErrUnavailable", r)
		}
	}
	// While closing: no new waits, and a release hands nothing to anyone.
	if _, err := e.c.Acquire(ctx, "a", AcquireRequest{Wait: time.Second}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("acquire with a wait while closing: %v", err)
	}
	if _, err := e.c.Acquire(ctx, "a", AcquireRequest{}); !errors.Is(err, ErrHeld) {
		t.Fatalf("acquire without a wait while closing: %v", err)
	}
	if err := e.c.Release(ctx, "a", holder.Token); err != nil {
		t.Fatal(err)
	}
	if s := status(t, e, "a"); s.Held || s.Fencing != 1 {
		t.Fatalf("status %+v", s)
	}
}

func TestTooManyWaiters(t *testing.T) {
	clock := durabletest.NewClock(t0)
	e := newEnv(t, "", 2, withClock(clock))
	holder := mustAcquire(t, e, "a", AcquireRequest{TTL: time.Hour})
	w1 := e.startWaiter(t, "a", AcquireRequest{Wait: time.Minute})
	w2 := e.startWaiter(t, "a", AcquireRequest{Wait: 50*time.Second + time.Millisecond})
	if _, err := e.c.Acquire(context.Background(), "a", AcquireRequest{Wait: time.Minute}); !errors.Is(err, durable.ErrOverloaded) {
		t.Fatalf("third waiter: %v, want ErrOverloaded", err)
	}
	if err := e.c.Release(context.Background(), "a", holder.Token); err != nil {
		t.Fatal(err)
	}
	r := recv(t, w1)
	if r.err != nil {
		t.Fatal(r.err)
	}
	// One waiter left: room for another.
	w3 := e.startWaiter(t, "a", AcquireRequest{Wait: 50*time.Second + 2*time.Millisecond})
	for _, w := range []chan result{w2, w3} {
		if err := e.c.Release(context.Background(), "a", r.g.Token); err != nil {
			t.Fatal(err)
		}
		if r = recv(t, w); r.err != nil {
			t.Fatal(r.err)
		}
	}
	if r.g.Fencing != 4 {
		t.Fatalf("last grant %+v", r.g)
	}
}

func TestStateSurvivesRestart(t *testing.T) {
	clock := durabletest.NewClock(t0)
	e := newEnv(t, "", DefaultMaxWaiters, withClock(clock))
	ctx := context.Background()
	var last int64
	for range 3 {
		g := mustAcquire(t, e, "a", AcquireRequest{})
		last = g.Fencing
		if err := e.c.Release(ctx, "a", g.Token); err != nil {
			t.Fatal(err)
		}
	}
	held := mustAcquire(t, e, "a", AcquireRequest{TTL: 10 * time.Second, Owner: ptr("before")})
	e.close(t)

	clock.Advance(5 * time.Second)
	e = newEnv(t, e.dir, DefaultMaxWaiters, withClock(clock))
	s := status(t, e, "a")
	if !s.Held || s.Fencing != last+1 || !s.ExpiresAt.Equal(held.ExpiresAt) || *s.Owner != "before" {
		t.Fatalf("after restart %+v", s)
	}
	if _, err := e.c.Acquire(ctx, "a", AcquireRequest{}); !errors.Is(err, ErrHeld) {
		t.Fatalf("acquire of a lock held before the restart: %v", err)
	}
	if _, err := e.c.Renew(ctx, "a", held.Token, 10*time.Second); err != nil {
		t.Fatalf("renew with the token issued before the restart: %v", err)
	}
	e.close(t)

	clock.Advance(10 * time.Second)
	e = newEnv(t, e.dir, DefaultMaxWaiters, withClock(clock))
	if s := status(t, e, "a"); s.Held || s.Fencing != last+1 {
		t.Fatalf("after expiry %+v", s)
	}
	if err := e.c.Release(ctx, "a", held.Token); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("release of the expired grant: %v", err)
	}
	if g := mustAcquire(t, e, "a", AcquireRequest{}); g.Fencing != last+2 {
		t.Fatalf("fencing after restarts %d, want %d", g.Fencing, last+2)
	}
}

func TestStateSurvivesEviction(t *testing.T) {
	clock := durabletest.NewClock(t0)
	e := newEnv(t, "", DefaultMaxWaiters, withClock(clock), func(rt *durable.Runtime) { rt.IdleTimeout = time.Second })
	g := mustAcquire(t, e, "a", AcquireRequest{TTL: time.Hour})
	before := e.rt.Stats().Evictions
	for i := 0; e.rt.Stats().Evictions == before; i++ {
		if i > 10_000 {
			t.Fatal("the lock object was never evicted")
		}
		clock.Advance(time.Second)
		time.Sleep(time.Millisecond) // let the janitor run; bounded by the loop
	}
	if s := status(t, e, "a"); !s.Held || s.Fencing != 1 {
		t.Fatalf("after eviction %+v", s)
	}
	if _, err := e.c.Acquire(context.Background(), "a", AcquireRequest{}); !errors.Is(err, ErrHeld) {
		t.Fatalf("acquire after eviction: %v", err)
	}
	if err := e.c.Release(context.Background(), "a", g.Token); err != nil {
		t.Fatal(err)
	}
}

// Many goroutines take one lock in turn with waits: no two are ever inside
// at once, and every grant's fencing is above every earlier one.
func TestMutualExclusion(t *testing.T) {
	e := newEnv(t, "", DefaultMaxWaiters)
	ctx := context.Background()
	const workers, rounds = 16, 25
	var (
		inside   atomic.Int32
		mu       sync.Mutex
		lastSeen int64
		grants   int
	)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				g, err := e.c.Acquire(ctx, "shared", AcquireRequest{TTL: time.Minute, Wait: time.Minute, Owner: ptr(fmt.Sprint(w))})
				if err != nil {
					errs <- err
					return
				}
				if n := inside.Add(1); n != 1 {
					errs <- fmt.Errorf("%d holders at once", n)
				}
				mu.Lock()
				if g.Fencing <= lastSeen {
					errs <- fmt.Errorf("fencing %d after %d", g.Fencing, lastSeen)
				}
				lastSeen = g.Fencing
				grants++
				mu.Unlock()
				inside.Add(-1)
				if err := e.c.Release(ctx, "shared", g.Token); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if grants != workers*rounds || lastSeen != workers*rounds {
		t.Fatalf("%d grants, last fencing %d; want %d", grants, lastSeen, workers*rounds)
	}
}

// BenchmarkAcquireRelease runs acquire+release cycles, one lock name per
// goroutine, through the Client.
func BenchmarkAcquireRelease(b *testing.B) {
	e := newEnv(b, "", DefaultMaxWaiters)
	ctx := context.Background()
	var next atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		name := fmt.Sprint("bench-", next.Add(1))
		for pb.Next() {
			g, err := e.c.Acquire(ctx, name, AcquireRequest{TTL: time.Minute})
			if err != nil {
				b.Error(err)
				return
			}
			if err := e.c.Release(ctx, name, g.Token); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
