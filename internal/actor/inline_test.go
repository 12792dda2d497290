package actor

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// On an idle actor, EnqueueAndRun runs the event on the calling goroutine:
// a batch that wrote nothing has its result by the time it returns.
func TestEnqueueAndRunRunsTheEventBeforeReturning(t *testing.T) {
	a := New(host{}, &Config{MaxQueue: 10, MaxBatch: 10})
	var ran, done atomic.Bool
	err := a.EnqueueAndRun(&Event{Ctx: context.Background(),
		Run:  func(context.Context) { ran.Store(true) },
		Done: func(error) { done.Store(true) }})
	if err != nil {
		t.Fatal(err)
	}
	if !ran.Load() || !done.Load() {
		t.Fatalf("after EnqueueAndRun on an idle actor: ran %v, done %v; want both", ran.Load(), done.Load())
	}
	if a.Busy() {
		t.Fatal("the actor is still busy after its only event")
	}
}

// Events that arrive while the caller runs its batch are not left behind
// when it returns: the loop goes on on another goroutine.
func TestEnqueueAndRunHandsOnWhatArrivesMeanwhile(t *testing.T) {
	a := New(host{}, &Config{MaxQueue: 10, MaxBatch: 10})
	later := make(chan error, 1)
	err := a.EnqueueAndRun(&Event{Ctx: context.Background(),
		Run: func(context.Context) {
			// Queued while this batch runs: the next batch's.
			if err := a.Enqueue(&Event{Ctx: context.Background(), Run: func(context.Context) {},
				Done: func(err error) { later <- err }}); err != nil {
				t.Error(err)
			}
		},
		Done: func(error) {}})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-later:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the event queued during the caller's batch never ran")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
}

// When a loop already runs, EnqueueAndRun only queues: the event runs on
// the loop's goroutine, in order, and the caller waits as with Enqueue.
func TestEnqueueAndRunQueuesBehindARunningLoop(t *testing.T) {
	a := New(host{}, &Config{MaxQueue: 10, MaxBatch: 10})
	release := make(chan struct{})
	started := make(chan struct{})
	var order []int
	first := make(chan error, 1)
	if err := a.Enqueue(&Event{Ctx: context.Background(),
		Run:  func(context.Context) { close(started); <-release; order = append(order, 1) },
		Done: func(err error) { first <- err }}); err != nil {
		t.Fatal(err)
	}
	<-started
	second := make(chan error, 1)
	returned := make(chan struct{})
	go func() {
		if err := a.EnqueueAndRun(&Event{Ctx: context.Background(),
			Run:  func(context.Context) { order = append(order, 2) },
			Done: func(err error) { second <- err }}); err != nil {
			t.Error(err)
		}
		close(returned)
	}()
	select {
	case <-returned:
	case <-time.After(10 * time.Second):
		t.Fatal("EnqueueAndRun behind a running loop did not return")
	}
	close(release)
	for _, ch := range []chan error{first, second} {
		if err := <-ch; err != nil {
			t.Fatal(err)
		}
	}
	if len(order) != 2 || order[0] != 1 || order[1] != 2 {
		t.Fatalf("events ran in order %v, want [1 2]", order)
	}
}
