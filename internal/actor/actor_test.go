package actor

import (
	"context"
	"errors"
	"testing"
	"time"
)

// host is a Host with no storage, for the executor's own tests.
type host struct{}

func (host) Activate(context.Context) error  { return nil }
func (host) Reset()                          {}
func (host) BeginTurn()                      {}
func (host) EndTurn(bool) error              { return nil }
func (host) Commit() (bool, []string, error) { return false, nil, nil }
func (host) Rollback()                       {}

// WaitIdle must never miss the moment the actor goes idle, however the
// loop's exit and the wait interleave.
func TestWaitIdleNeverMissesIdle(t *testing.T) {
	cfg := &Config{MaxQueue: 10, MaxBatch: 10}
	for i := range 20_000 {
		a := New(host{}, cfg)
		if err := a.Enqueue(&Event{Ctx: context.Background(), Run: func(context.Context) {}, Done: func(error) {}}); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := a.WaitIdle(ctx)
		cancel()
		if err != nil {
			t.Fatalf("iteration %d: WaitIdle: %v (busy=%v)", i, err, a.Busy())
		}
	}
}

// Building an object happens with the gate held to completion: stepping
// outside it in the constructor is refused, not left to break the object.
type outsideInActivate struct {
	host
	a   *Actor
	err error
}

func (h *outsideInActivate) Activate(context.Context) error {
	h.err = h.a.OutsideGate(func() error { return nil })
	return nil
}

func TestOutsideGateRefusedInConstructor(t *testing.T) {
	h := &outsideInActivate{}
	h.a = New(h, &Config{MaxQueue: 10, MaxBatch: 10})
	done := make(chan error, 1)
	h.a.Enqueue(&Event{Ctx: context.Background(), Run: func(context.Context) {}, Done: func(err error) { done <- err }})
	if err := <-done; err != nil {
		t.Fatalf("event: %v", err)
	}
	if !errors.Is(h.err, ErrInConstructor) {
		t.Fatalf("OutsideGate in Activate: %v, want ErrInConstructor", h.err)
	}
}
