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
func (host) AfterCommit()                    {}

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

// writingHost reports a write for every batch whose events set write.
type writingHost struct {
	host
	write bool
}

func (h *writingHost) Commit() (bool, []string, error) {
	w := h.write
	h.write = false
	return w, nil, nil
}

// Results leave in commit order even when a batch that wrote nothing is
// released while an earlier batch's results are still being delivered (by
// the sync's goroutine): the later batch waits for them.
func TestResultsLeaveInCommitOrder(t *testing.T) {
	h := &writingHost{}
	cfg := &Config{MaxQueue: 10, MaxBatch: 10, Sync: func(_ []string, done func(error)) { go done(nil) }}
	a := New(h, cfg)
	var order []int // appended by Done callbacks, one at a time by design
	firstDelivering, unblock := make(chan struct{}), make(chan struct{})
	dones := make(chan struct{}, 2)
	a.Enqueue(&Event{Ctx: context.Background(), Run: func(context.Context) { h.write = true }, Done: func(error) {
		close(firstDelivering)
		<-unblock
		order = append(order, 1)
		dones <- struct{}{}
	}})
	<-firstDelivering
	a.Enqueue(&Event{Ctx: context.Background(), Run: func(context.Context) {}, Done: func(error) {
		order = append(order, 2)
		dones <- struct{}{}
	}})
	// Wait until the loop ran the second event and released it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		a.mu.Lock()
		running := a.running || len(a.queue) > 0
		a.mu.Unlock()
		if !running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the second event did not run")
		}
		time.Sleep(time.Millisecond)
	}
	close(unblock)
	for range 2 {
		select {
		case <-dones:
		case <-time.After(10 * time.Second):
			t.Fatal("results not delivered")
		}
	}
	if len(order) != 2 || order[0] != 1 || order[1] != 2 {
		t.Fatalf("results delivered in order %v, want [1 2]", order)
	}
	if err := a.WaitIdle(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// slowUpkeepHost's AfterCommit (a checkpoint, in the runtime) waits for the
// batch's result to have been delivered.
type slowUpkeepHost struct {
	writingHost
	delivered chan struct{}
	ranAfter  chan bool // whether the result was out before AfterCommit ended
}

func (h *slowUpkeepHost) AfterCommit() {
	select {
	case <-h.delivered:
		h.ranAfter <- true
	case <-time.After(5 * time.Second):
		h.ranAfter <- false
	}
}

// A batch's results do not wait for the upkeep after its commit: they go
// to the sync round first, and AfterCommit runs while it syncs.
func TestAfterCommitDoesNotDelayResults(t *testing.T) {
	h := &slowUpkeepHost{delivered: make(chan struct{}), ranAfter: make(chan bool, 1)}
	cfg := &Config{MaxQueue: 10, MaxBatch: 10, Sync: func(_ []string, done func(error)) { go done(nil) }}
	a := New(h, cfg)
	a.Enqueue(&Event{Ctx: context.Background(), Run: func(context.Context) { h.write = true }, Done: func(err error) {
		if err != nil {
			t.Errorf("event: %v", err)
		}
		close(h.delivered)
	}})
	if !<-h.ranAfter {
		t.Fatal("the result was not delivered while AfterCommit ran: upkeep delayed the batch's results")
	}
	if err := a.WaitIdle(context.Background()); err != nil {
		t.Fatal(err)
	}
}
