package lock

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"slices"
	"time"

	"github.com/durableobjects/durable"
)

// stateKey is the storage key of a lock's one record.
const stateKey = "lock"

// record is what a lock keeps in storage: the fencing counter and, while a
// grant exists, its token, owner and expiry. A grant whose expiry has
// passed is dead even though its fields are still there: every event
// compares the expiry with the clock, so a missed or late alarm never
// keeps a lock held.
type record struct {
	Fencing   int64   `json:"fencing"`
	Token     string  `json:"token,omitempty"`
	Owner     *string `json:"owner,omitempty"`
	ExpiresAt int64   `json:"expires_at_ms,omitempty"` // ms since the epoch
}

// held reports whether the record has a live grant at nowMS.
func (r *record) held(nowMS int64) bool { return r.Token != "" && nowMS < r.ExpiresAt }

// owns reports whether token is the live grant's.
func (r *record) owns(token string, nowMS int64) bool {
	return r.held(nowMS) && subtle.ConstantTimeCompare([]byte(token), []byte(r.Token)) == 1
}

// waiter is an acquire waiting outside the input gate. It lives only in
// memory: the object cannot be evicted while an event is outside its gate,
// and a restart ends every wait (ErrUnavailable) before it happens.
// Decisions about a waiter (grant it, drop it) are made only inside the
// gate; the waiter itself only waits for wake, its deadline, the runtime's
// closing or its caller giving up, and then comes back into the gate.
type waiter struct {
	ctx      context.Context
	ttlMS    int64
	owner    *string
	deadline time.Time
	wake     chan struct{} // closed when the waiter is granted or dropped
	grant    *grantMsg     // set when granted
	queued   bool
}

// object is one lock.
type object struct {
	st         *durable.State
	maxWaiters int
	waiters    []*waiter // FIFO; gate-owned

	// rec is the stored record once read: the object is its only writer,
	// and save keeps it equal to storage. An event that panics or a
	// commit that fails resets the object (a fresh instance reads storage
	// again), so it never outlives writes that were undone.
	rec    record
	loaded bool
}

// Messages of the RPC methods.
type acquireArgs struct {
	TTLMS int64         `json:"ttl_ms"`
	Wait  time.Duration `json:"wait"`
	Owner *string       `json:"owner,omitempty"`
}

type renewArgs struct {
	Token string `json:"token"`
	TTLMS int64  `json:"ttl_ms"`
}

type grantMsg struct {
	Token       string `json:"token"`
	Fencing     int64  `json:"fencing"`
	ExpiresAtMS int64  `json:"expires_at_ms"`
}

type statusMsg struct {
	Held        bool    `json:"held"`
	Fencing     int64   `json:"fencing"`
	ExpiresAtMS int64   `json:"expires_at_ms,omitempty"`
	Owner       *string `json:"owner,omitempty"`
}

// Acquire grants the lock now if it is free and nobody waits for it;
// otherwise it queues a waiter (if args.Wait > 0) and waits outside the
// gate until an event hands it the lock or the wait ends.
func (o *object) Acquire(ctx context.Context, args acquireArgs) (grantMsg, error) {
	rec, err := o.settle()
	if err != nil {
		return grantMsg{}, err
	}
	now := o.st.Now()
	if !rec.held(now.UnixMilli()) {
		// settle found no waiter to hand the lock to, so none is queued.
		return o.grant(&rec, now.UnixMilli(), args.TTLMS, args.Owner)
	}
	if args.Wait <= 0 {
		return grantMsg{}, ErrHeld
	}
	if closed(o.st.Closing()) {
		return grantMsg{}, ErrUnavailable
	}
	if err := ctx.Err(); err != nil {
		return grantMsg{}, err
	}
	if len(o.waiters) >= o.maxWaiters {
		return grantMsg{}, fmt.Errorf("%w: %d acquires already wait for this lock", durable.ErrOverloaded, len(o.waiters))
	}
	w := &waiter{ctx: ctx, ttlMS: args.TTLMS, owner: args.Owner, deadline: now.Add(args.Wait),
		wake: make(chan struct{}), queued: true}
	o.waiters = append(o.waiters, w)
	if err := o.armAlarm(&rec); err != nil {
		o.remove(w)
		return grantMsg{}, err
	}
	err = o.st.OutsideGate(func() error {
		expired := make(chan struct{})
		t := o.st.Clock().AfterFunc(args.Wait, func() { close(expired) })
		defer t.Stop()
		select {
		case <-w.wake:
		case <-expired:
		case <-o.st.Closing():
		case <-ctx.Done():
		}
		return nil
	})
	if err != nil {
		o.remove(w)
		return grantMsg{}, err
	}
	// Back in the gate: the lock may have come free before the deadline
	// without an event noticing yet (an alarm not delivered yet), so settle
	// first; it grants this waiter if it is first in line and was in time.
	if w.grant == nil {
		if _, err := o.settle(); err != nil {
			o.remove(w)
			return grantMsg{}, err
		}
	}
	o.remove(w)
	switch {
	case w.grant != nil:
		return *w.grant, nil
	case closed(o.st.Closing()):
		return grantMsg{}, ErrUnavailable
	case ctx.Err() != nil:
		return grantMsg{}, ctx.Err()
	}
	return grantMsg{}, ErrHeld
}

// Renew extends the live grant of token to now + ttl.
func (o *object) Renew(ctx context.Context, args renewArgs) (int64, error) {
	rec, err := o.settle()
	if err != nil {
		return 0, err
	}
	now := o.st.Now().UnixMilli()
	if !rec.owns(args.Token, now) {
		return 0, ErrNotOwner
	}
	rec.ExpiresAt = now + args.TTLMS
	if err := o.save(&rec); err != nil {
		return 0, err
	}
	if err := o.armAlarm(&rec); err != nil {
		return 0, err
	}
	return rec.ExpiresAt, nil
}

// Release ends the live grant of token and hands the lock to the next
// waiter in time.
func (o *object) Release(ctx context.Context, token string) error {
	rec, err := o.settle()
	if err != nil {
		return err
	}
	if !rec.owns(token, o.st.Now().UnixMilli()) {
		return ErrNotOwner
	}
	rec.Token, rec.Owner, rec.ExpiresAt = "", nil, 0
	if err := o.save(&rec); err != nil {
		return err
	}
	_, err = o.handOff(rec)
	return err
}

// Status reports the lock's state.
func (o *object) Status(ctx context.Context) (statusMsg, error) {
	rec, err := o.settle()
	if err != nil {
		return statusMsg{}, err
	}
	s := statusMsg{Fencing: rec.Fencing}
	if rec.held(o.st.Now().UnixMilli()) {
		s.Held, s.ExpiresAtMS, s.Owner = true, rec.ExpiresAt, rec.Owner
	}
	return s, nil
}

// Alarm runs at the live grant's expiry while acquires wait: it hands the
// lock to the next waiter in time.
func (o *object) Alarm(ctx context.Context, _ durable.AlarmInfo) error {
	rec, err := o.settle()
	if err != nil {
		return err
	}
	// The running alarm is deleted when this returns unless a new one is
	// set: keep one at the live grant's expiry while acquires still wait.
	return o.armAlarm(&rec)
}

// load reads the lock's record (zero if it never had one).
func (o *object) load() (record, error) {
	if o.loaded {
		return o.rec, nil
	}
	rec, _, err := durable.Get[record](o.st.Storage(), stateKey)
	if err != nil {
		return rec, err
	}
	o.rec, o.loaded = rec, true
	return rec, nil
}

func (o *object) save(rec *record) error {
	if err := durable.Put(o.st.Storage(), stateKey, *rec); err != nil {
		o.loaded = false
		return err
	}
	o.rec, o.loaded = *rec, true
	return nil
}

// settle reads the record and, if the lock is free and acquires wait,
// grants it to the first waiter still in time. Every event starts with it,
// so the lock's state never depends on when its alarm runs.
func (o *object) settle() (record, error) {
	rec, err := o.load()
	if err != nil {
		return rec, err
	}
	return o.handOff(rec)
}

// handOff grants a free lock to the first waiter that was still waiting
// when it came free, dropping (and waking) those before it that were not.
// If waiters remain behind a held lock it makes sure the alarm is set at
// the grant's expiry.
func (o *object) handOff(rec record) (record, error) {
	if len(o.waiters) == 0 {
		return rec, nil
	}
	now := o.st.Now()
	nowMS := now.UnixMilli()
	if rec.held(nowMS) {
		return rec, nil
	}
	// When did the lock come free? A grant nobody released ended at its
	// expiry; a release ran handOff itself, so a released lock with
	// waiters is only met by waiters queued since (it is "free now").
	freeAt := now
	if rec.Token != "" {
		freeAt = time.UnixMilli(min(rec.ExpiresAt, nowMS))
	}
	closing := closed(o.st.Closing())
	for len(o.waiters) > 0 {
		w := o.waiters[0]
		if closing || w.ctx.Err() != nil || !freeAt.Before(w.deadline) {
			o.waiters[0] = nil
			o.waiters = o.waiters[1:]
			w.queued = false
			close(w.wake)
			continue
		}
		g, err := o.grant(&rec, nowMS, w.ttlMS, w.owner)
		if err != nil {
			return rec, err
		}
		o.waiters[0] = nil
		o.waiters = o.waiters[1:]
		w.queued, w.grant = false, &g
		close(w.wake)
		break
	}
	if len(o.waiters) == 0 {
		o.waiters = nil
	}
	return rec, o.armAlarm(&rec)
}

// armAlarm sets the alarm at the live grant's expiry while acquires wait
// for it, so the lock is handed on when the grant ends unreleased.
func (o *object) armAlarm(rec *record) error {
	if len(o.waiters) == 0 || !rec.held(o.st.Now().UnixMilli()) {
		return nil
	}
	s := o.st.Storage()
	at := time.UnixMilli(rec.ExpiresAt)
	if cur, ok, err := s.GetAlarm(); err != nil || (ok && cur.Equal(at)) {
		return err
	}
	return s.SetAlarm(at)
}

// grant gives the lock to a new holder: the next fencing value and a new
// token, stored before anyone hears of them (the reply leaves only once
// the write is durable, so a fencing value is never acknowledged twice).
func (o *object) grant(rec *record, nowMS, ttlMS int64, owner *string) (grantMsg, error) {
	next := record{Fencing: rec.Fencing + 1, Token: newToken(), Owner: owner, ExpiresAt: nowMS + ttlMS}
	if err := o.save(&next); err != nil {
		return grantMsg{}, err
	}
	*rec = next
	return grantMsg{Token: next.Token, Fencing: next.Fencing, ExpiresAtMS: next.ExpiresAt}, nil
}

// remove takes w out of the queue if it is still there.
func (o *object) remove(w *waiter) {
	if !w.queued {
		return
	}
	w.queued = false
	if i := slices.Index(o.waiters, w); i >= 0 {
		o.waiters = slices.Delete(o.waiters, i, i+1)
	}
}

// newToken returns 128 random bits, base64url without padding.
func newToken() string {
	var b [16]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
