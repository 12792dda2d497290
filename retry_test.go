package durable_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/durableobjects/durable"
)

// gate is an object whose Hold method blocks until the test releases it.
type gate struct{ release chan struct{} }

func (g *gate) Hold(ctx context.Context) error {
	<-g.release
	return nil
}

func (g *gate) Ping(ctx context.Context) error { return nil }

func TestRetryingStubWaitsOutOverload(t *testing.T) {
	release := make(chan struct{})
	rt := durable.NewRuntime(t.TempDir())
	rt.MaxQueue = 2
	rt.StubRetry = durable.Retry{Attempts: 100, Base: time.Millisecond, Max: 20 * time.Millisecond}
	ns, err := rt.Register("gate", func(*durable.State) any { return &gate{release: release} })
	if err != nil {
		t.Fatal(err)
	}
	openRuntime(t, rt)
	ctx := context.Background()
	stub := ns.GetByName("g")
	held := durable.Go[struct{}](ctx, stub, "Hold", nil)
	waitFor(t, "the gate held", func() bool { return rt.Stats().Activations == 1 })
	// Hold runs; two more calls fill the queue of two.
	queued := []*durable.Pending[struct{}]{
		durable.Go[struct{}](ctx, stub, "Ping", nil),
		durable.Go[struct{}](ctx, stub, "Ping", nil),
	}
	// A stub with retrying off is refused at once; the runtime's stubs
	// (StubRetry, set below) wait for room.
	if _, err := durable.Call[struct{}](ctx, stub.WithRetry(durable.Retry{Attempts: 1}), "Ping", nil); !errors.Is(err, durable.ErrOverloaded) {
		t.Fatalf("stub that does not retry, on a full queue: %v", err)
	}
	retried := make(chan error, 1)
	go func() {
		_, err := durable.Call[struct{}](ctx, stub, "Ping", nil)
		retried <- err
	}()
	waitFor(t, "a retry refused", func() bool { return rt.Stats().Overloaded >= 3 })
	close(release)
	if err := <-retried; err != nil {
		t.Fatalf("retrying stub: %v", err)
	}
	for _, p := range append(queued, held) {
		if _, err := p.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// Stubs retry with DefaultRetry unless the runtime says otherwise
// (design.md: "stubs retry retryable errors with exponential backoff and
// jitter"); durable serve turns it off.
func TestStubsRetryByDefault(t *testing.T) {
	rt := durable.NewRuntime(t.TempDir())
	ns, err := rt.Register("gate", func(*durable.State) any { return &gate{} })
	if err != nil {
		t.Fatal(err)
	}
	openRuntime(t, rt)
	if r := durable.RetryOf(ns.GetByName("a")); r != durable.DefaultRetry {
		t.Fatalf("default stub retry %+v, want DefaultRetry", r)
	}
	rt.StubRetry = durable.Retry{Attempts: 1}
	if r := durable.RetryOf(ns.GetByName("a")); r.Attempts != 1 {
		t.Fatalf("stub retry %+v with StubRetry off", r)
	}
}
