package durable_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/durableobjects/durable"
)

// heldBarrier holds durability barrier rounds open until released.
type heldBarrier struct {
	mu      sync.Mutex
	entered chan uint64          // a round started and is held
	release map[uint64]chan bool // per round
}

func holdBarrier(t *testing.T, rt *durable.Runtime) *heldBarrier {
	hb := &heldBarrier{entered: make(chan uint64, 100), release: map[uint64]chan bool{}}
	durable.SetBeforeSyncRound(rt, func(round uint64, _ int) {
		hb.entered <- round
		<-hb.gate(round)
	})
	t.Cleanup(func() {
		hb.mu.Lock()
		defer hb.mu.Unlock()
		for r, ch := range hb.release {
			select {
			case <-ch:
			default:
				close(ch)
			}
			delete(hb.release, r)
		}
		durable.SetBeforeSyncRound(rt, nil)
	})
	return hb
}

func (hb *heldBarrier) gate(round uint64) chan bool {
	hb.mu.Lock()
	defer hb.mu.Unlock()
	ch, ok := hb.release[round]
	if !ok {
		ch = make(chan bool)
		hb.release[round] = ch
	}
	return ch
}

func (hb *heldBarrier) waitRound(t *testing.T) uint64 {
	t.Helper()
	select {
	case r := <-hb.entered:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no sync round started")
		return 0
	}
}

func (hb *heldBarrier) open(round uint64) { close(hb.gate(round)) }

// async runs a call in the background; its channel closes when the reply
// is released.
func async(ctx context.Context, s *durable.Stub, method string, arg any) (done chan struct{}, errp *error) {
	done = make(chan struct{})
	errp = new(error)
	go func() {
		defer close(done)
		_, *errp = durable.Call[any](ctx, s, method, arg)
	}()
	return done, errp
}

func released(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// settle gives released replies a moment to arrive. It only bounds how
// long a test looks for something that must not happen.
func settle() { time.Sleep(50 * time.Millisecond) }

func TestNoReplyBeforeItsWritesAreSynced(t *testing.T) {
	h := newHarness(t, "", nil)
	hb := holdBarrier(t, h.rt)
	ctx := context.Background()
	a, b := h.ns.GetByName("a"), h.ns.GetByName("b")

	// Write A: its commit starts round r1, which we hold open.
	doneA, errA := async(ctx, a, "Set", kv{"k", "1"})
	r1 := hb.waitRound(t)
	settle()
	if released(doneA) {
		t.Fatal("write A replied while the sync covering it was held")
	}

	// While r1 is held: B writes (another object), A is read. Neither may
	// reply before a sync covers B's write and A's earlier write.
	doneB, errB := async(ctx, b, "Set", kv{"k", "2"})
	doneRead, errRead := async(ctx, a, "Get", "k")
	settle()
	if released(doneB) || released(doneRead) {
		t.Fatal("a reply left while round 1 was held")
	}

	// Release r1: exactly A (and the read of A, which waits only for A's
	// commit) are released; B committed after r1 began and waits for r2.
	hb.open(r1)
	<-doneA
	if *errA != nil {
		t.Fatal(*errA)
	}
	r2 := hb.waitRound(t) // B's round
	<-doneRead
	if *errRead != nil {
		t.Fatal(*errRead)
	}
	settle()
	if released(doneB) {
		t.Fatal("write B replied before the round covering it")
	}
	hb.open(r2)
	<-doneB
	if *errB != nil {
		t.Fatal(*errB)
	}
}

func TestReadOnlyEventsSkipTheBarrier(t *testing.T) {
	h := newHarness(t, "", nil)
	hb := holdBarrier(t, h.rt)
	ctx := context.Background()
	// An object that never wrote: its reads need no sync at all, so they
	// reply while a round for another object is held.
	doneW, _ := async(ctx, h.ns.GetByName("writer"), "Set", kv{"k", "v"})
	r := hb.waitRound(t)
	if got := call[string](t, h.ns.GetByName("reader"), "Get", "k"); got != "" {
		t.Fatalf("Get = %q", got)
	}
	hb.open(r)
	<-doneW
}

func TestGroupCommitCoalescesEventsIntoOneSync(t *testing.T) {
	h := newHarness(t, "", nil)
	hb := holdBarrier(t, h.rt)
	ctx := context.Background()
	first, _ := async(ctx, h.ns.GetByName("g0"), "Set", kv{"k", "v"})
	r1 := hb.waitRound(t)
	// 50 writes to 10 objects run and commit while round 1 is held.
	ran := h.rt.Stats().EventsRun
	var dones []chan struct{}
	for i := range 50 {
		d, _ := async(ctx, h.ns.GetByName(string(rune('a'+i%10))), "Incr", nil)
		dones = append(dones, d)
	}
	waitFor(t, "50 events to commit", func() bool { return h.rt.Stats().EventsRun-ran >= 50 })
	before := h.rt.Stats().SyncRounds
	hb.open(r1)
	<-first
	r2 := hb.waitRound(t)
	hb.open(r2)
	for _, d := range dones {
		<-d
	}
	// Every write made while r1 was held is covered by r2 alone.
	if got := h.rt.Stats().SyncRounds - before; got > 2 {
		t.Fatalf("50 writes waiting for one round took %d more rounds, want at most 2", got)
	}
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
