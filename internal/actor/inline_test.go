package actor

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// On an idle actor, EnqueueInline hands the caller the batch to run on its
// own goroutine: a batch that wrote nothing has its result when runHere
// returns.
func TestEnqueueInlineRunsTheEventInRunHere(t *testing.T) {
	a := New(host{}, &Config{MaxQueue: 10, MaxBatch: 10})
	var ran, done atomic.Bool
	runHere, err := a.EnqueueInline(&Event{Ctx: context.Background(),
		Run:  func(context.Context) { ran.Store(true) },
		Done: func(error) { done.Store(true) }})
	if err != nil || runHere == nil {
		t.Fatalf("EnqueueInline on an idle actor: runHere %v, %v; want a function to run", runHere != nil, err)
	}
	if ran.Load() {
		t.Fatal("the event ran before runHere")
	}
	runHere()
	if !ran.Load() || !done.Load() {
		t.Fatalf("after runHere: ran %v, done %v; want both", ran.Load(), done.Load())
	}
	if a.Busy() {
		t.Fatal("the actor is still busy after its only event")
	}
}

// Events that arrive while the caller runs its batch are not left behind
// when runHere returns: the loop goes on on another goroutine.
func TestEnqueueInlineHandsOnWhatArrivesMeanwhile(t *testing.T) {
	a := New(host{}, &Config{MaxQueue: 10, MaxBatch: 10})
	later := make(chan error, 1)
	runHere, err := a.EnqueueInline(&Event{Ctx: context.Background(),
		Run: func(context.Context) {
			// Queued while this batch runs: the next batch's.
			if err := a.Enqueue(&Event{Ctx: context.Background(), Run: func(context.Context) {},
				Done: func(err error) { later <- err }}); err != nil {
				t.Error(err)
			}
		},
		Done: func(error) {}})
	if err != nil || runHere == nil {
		t.Fatalf("EnqueueInline on an idle actor: runHere %v, %v", runHere != nil, err)
	}
	runHere()
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

// When a loop already runs, EnqueueInline only queues (no runHere): the event runs on
// the loop's goroutine, in order, and the caller waits as with Enqueue.
func TestEnqueueInlineQueuesBehindARunningLoop(t *testing.T) {
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
		runHere, err := a.EnqueueInline(&Event{Ctx: context.Background(),
			Run:  func(context.Context) { order = append(order, 2) },
			Done: func(err error) { second <- err }})
		if err != nil || runHere != nil {
			t.Errorf("EnqueueInline behind a running loop: runHere %v, %v; want it queued", runHere != nil, err)
		}
		close(returned)
	}()
	select {
	case <-returned:
	case <-time.After(10 * time.Second):
		t.Fatal("EnqueueInline behind a running loop did not return")
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
