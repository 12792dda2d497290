package durable_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/durableobjects/durable"
)

// bcwObject waits outside the gate inside BlockConcurrencyWhile, and logs
// the order its events finish in.
type bcwObject struct {
	st      *durable.State
	config  string // fetched by the constructor outside the gate
	entered chan struct{}
	release chan struct{}
	mu      sync.Mutex
	log     []string
}

func (o *bcwObject) note(s string) {
	o.mu.Lock()
	o.log = append(o.log, s)
	o.mu.Unlock()
}

func (o *bcwObject) Blocking(ctx context.Context) error {
	err := o.st.BlockConcurrencyWhile(func() error {
		return o.st.OutsideGate(func() error {
			o.entered <- struct{}{}
			<-o.release
			return nil
		})
	})
	o.note("blocking")
	return err
}

func (o *bcwObject) Migrate(ctx context.Context) error {
	if err := o.st.Storage().Put("k", []byte("v")); err != nil {
		return err
	}
	o.st.BlockConcurrencyWhile(func() error { return errors.New("migration failed") })
	return nil // not reached: the failure resets the object
}

func (o *bcwObject) Has(ctx context.Context) (bool, error) {
	_, ok, err := o.st.Storage().Get("k")
	return ok, err
}

func (o *bcwObject) Quick(ctx context.Context) (string, error) {
	o.note("quick")
	return o.config, nil
}

func newBCW(t *testing.T) (*durable.Namespace, *bcwObject) {
	t.Helper()
	o := &bcwObject{entered: make(chan struct{}), release: make(chan struct{})}
	rt := durable.NewRuntime(t.TempDir())
	ns, err := rt.Register("bcw", func(st *durable.State) any {
		o.st = st
		// The usual start-up: load something over the network before
		// serving, blocking every event meanwhile.
		if err := st.BlockConcurrencyWhile(func() error {
			return st.OutsideGate(func() error { o.config = "loaded"; return nil })
		}); err != nil {
			panic(err)
		}
		return o
	})
	if err != nil {
		t.Fatal(err)
	}
	openRuntime(t, rt)
	return ns, o
}

// Inside BlockConcurrencyWhile, OutsideGate keeps the gate: an event sent
// while the callback waits runs only after it, and a constructor may wait
// outside the gate that way.
func TestBlockConcurrencyWhileHoldsTheGateOutside(t *testing.T) {
	ns, o := newBCW(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stub := ns.GetByName("x")
	blocking := durable.Go[any](ctx, stub, "Blocking", nil)
	select {
	case <-o.entered:
	case <-ctx.Done():
		_, err := blocking.Wait(ctx)
		t.Fatalf("Blocking never got outside the gate: %v", err)
	}
	quick := durable.Go[string](ctx, stub, "Quick", nil)
	time.Sleep(100 * time.Millisecond) // room for Quick to run, were the gate open
	close(o.release)
	if _, err := blocking.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if v, err := quick.Wait(ctx); err != nil || v != "loaded" {
		t.Fatalf("Quick = %q, %v", v, err)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.log) != 2 || o.log[0] != "blocking" {
		t.Fatalf("events finished in the order %v, want blocking first", o.log)
	}
}

// BlockConcurrencyWhile called when no event of the object runs (from a
// goroutine a handler left behind) fails with ErrNotInEvent and does not
// run fn; before, a failing fn panicked on that goroutine and took the
// process down.
func TestBlockConcurrencyWhileOutsideAnEvent(t *testing.T) {
	ns, o := newBCW(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := durable.Call[string](ctx, ns.GetByName("x"), "Quick", nil); err != nil {
		t.Fatal(err)
	}
	ran := false
	err := o.st.BlockConcurrencyWhile(func() error { ran = true; return errors.New("fails") })
	if !errors.Is(err, durable.ErrNotInEvent) || ran {
		t.Fatalf("BlockConcurrencyWhile outside an event = %v (fn ran: %v), want ErrNotInEvent", err, ran)
	}
}

// A BlockConcurrencyWhile that fails in a handler resets the object: the
// call fails with ErrReset and the callback's error, and its writes are
// discarded.
func TestBlockConcurrencyWhileFailureResets(t *testing.T) {
	ns, _ := newBCW(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stub := ns.GetByName("x")
	_, err := durable.Call[any](ctx, stub, "Migrate", nil)
	if !errors.Is(err, durable.ErrReset) || !strings.Contains(err.Error(), "migration failed") {
		t.Fatalf("Migrate = %v, want ErrReset with the callback's error", err)
	}
	if has, err := durable.Call[bool](ctx, stub, "Has", nil); err != nil || has {
		t.Fatalf("the failed handler's write is there: %v, %v", has, err)
	}
}
