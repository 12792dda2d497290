package actor

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
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
	waitDone(t, later, "the event queued during the caller's batch never ran")
	waitIdle(t, a)
}

// waitDone fails t unless an event's Done reports nil on ch within 10 s;
// timeout says what it means if it does not come.
func waitDone(t *testing.T, ch <-chan error, timeout string) {
	t.Helper()
	select {
	case err := <-ch:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal(timeout)
	}
}

// waitIdle fails t unless every actor goes idle within 10 s.
func waitIdle(t *testing.T, actors ...*Actor) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, a := range actors {
		if err := a.WaitIdle(ctx); err != nil {
			t.Fatal(err)
		}
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

// An event queued by another caller while runHere is pending is not run
// by it: the caller's goroutine runs its own event only. Here that other
// event steps outside the gate and blocks there; runHere returns anyway,
// and the other event completes on the loop's goroutine once unblocked.
func TestRunHereRunsOnlyTheCallersEvent(t *testing.T) {
	a := New(host{}, &Config{MaxQueue: 10, MaxBatch: 10})
	own := make(chan error, 1)
	runHere, err := a.EnqueueInline(&Event{Ctx: context.Background(), Run: func(context.Context) {},
		Done: func(err error) { own <- err }})
	if err != nil || runHere == nil {
		t.Fatalf("EnqueueInline on an idle actor: runHere %v, %v", runHere != nil, err)
	}
	release := make(chan struct{})
	other := make(chan error, 1)
	if err := a.Enqueue(&Event{Ctx: context.Background(), Done: func(err error) { other <- err },
		Run: func(context.Context) {
			if err := a.OutsideGate(func() error { <-release; return nil }); err != nil {
				t.Error(err)
			}
		}}); err != nil {
		t.Fatal(err)
	}
	returned := make(chan struct{})
	go func() { runHere(); close(returned) }()
	select {
	case <-returned:
	case <-time.After(10 * time.Second):
		close(release)
		t.Fatal("runHere waits for another caller's event (it ran that event's work outside the gate)")
	}
	if err := <-own; err != nil {
		t.Fatal(err)
	}
	close(release)
	waitDone(t, other, "the other event never completed")
}

// A handler of A calls B, running B's event on A's goroutine; meanwhile
// another event of B steps outside B's gate and calls A. A's call must not
// wait for that one (it would wait forever: A's gate is held by the
// handler waiting for B).
func TestNestedRunHereDoesNotWaitForOthersCallingBack(t *testing.T) {
	cfg := &Config{MaxQueue: 10, MaxBatch: 10}
	A, B := New(host{}, cfg), New(host{}, cfg)
	doneA := make(chan error, 1)
	if err := A.Enqueue(&Event{Ctx: context.Background(), Done: func(err error) { doneA <- err },
		Run: func(context.Context) {
			fromB := make(chan error, 1)
			runHere, err := B.EnqueueInline(&Event{Ctx: context.Background(), Run: func(context.Context) {},
				Done: func(err error) { fromB <- err }})
			if err != nil {
				t.Error(err)
				return
			}
			// Another caller's event of B, queued before runHere runs,
			// calls A from outside B's gate.
			B.Enqueue(&Event{Ctx: context.Background(), Done: func(error) {},
				Run: func(context.Context) {
					B.OutsideGate(func() error {
						back := make(chan error, 1)
						A.Enqueue(&Event{Ctx: context.Background(), Run: func(context.Context) {},
							Done: func(err error) { back <- err }})
						return <-back
					})
				}})
			if runHere != nil {
				runHere()
			}
			if err := <-fromB; err != nil {
				t.Error(err)
			}
		}}); err != nil {
		t.Fatal(err)
	}
	waitDone(t, doneA, "deadlock: A's handler ran B's other event, which waits for A")
	waitIdle(t, A, B)
}

// panickyCommit panics in Commit: a bug in the host, outside any handler.
type panickyCommit struct{ host }

func (panickyCommit) Commit() (bool, []string, error) { panic("commit exploded") }

// A panic outside the handler kills the process on a loop goroutine. On
// the caller's goroutine it must too, not be left for the caller (net/http
// recovers its handlers' panics) with the actor marked running forever.
func TestPanicOutsideTheHandlerInRunHereStillCrashes(t *testing.T) {
	if os.Getenv("ACTOR_RUNHERE_CHILD") == "1" {
		a := New(panickyCommit{}, &Config{MaxQueue: 10, MaxBatch: 10})
		runHere, err := a.EnqueueInline(&Event{Ctx: context.Background(), Run: func(context.Context) {}, Done: func(error) {}})
		if err != nil || runHere == nil {
			os.Exit(3)
		}
		func() {
			defer func() { recover() }() // what net/http would do
			runHere()
		}()
		time.Sleep(10 * time.Second)
		os.Exit(0) // the process survived: the test fails
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestPanicOutsideTheHandlerInRunHereStillCrashes$")
	cmd.Env = append(os.Environ(), "ACTOR_RUNHERE_CHILD=1")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 {
		t.Fatalf("child: %v, want a panic exit (2); output:\n%s", err, out)
	}
	if !strings.Contains(string(out), "commit exploded") || !strings.Contains(string(out), "re-raised") {
		t.Fatalf("the crash does not name the panic:\n%s", out)
	}
}
