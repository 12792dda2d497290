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

// gateObject blocks inside or outside its gate on the test's channels.
type gateObject struct {
	st      *durable.State
	entered chan struct{}
	block   chan struct{}
	outside chan struct{}
	resume  chan struct{}
}

func (o *gateObject) Block(ctx context.Context) error {
	o.entered <- struct{}{}
	<-o.block
	return nil
}

func (o *gateObject) Quick(ctx context.Context, v string) (string, error) {
	return v, o.st.Storage().Put("k", []byte(v))
}

func (o *gateObject) Slow(ctx context.Context) error {
	return o.st.OutsideGate(func() error {
		o.outside <- struct{}{}
		<-o.resume
		return nil
	})
}

// An event that completed earlier in the same batch as an event that then
// steps outside the gate as the batch's last item is still committed and
// answered, without waiting for the outside event to come back.
func TestEventBeforeOutsideGateInOneBatchIsAnswered(t *testing.T) {
	o := &gateObject{entered: make(chan struct{}), block: make(chan struct{}),
		outside: make(chan struct{}), resume: make(chan struct{})}
	rt := durable.NewRuntime(t.TempDir())
	ns, err := rt.Register("gate", func(st *durable.State) any { o.st = st; return o })
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Open(); err != nil {
		t.Fatal(err)
	}
	defer rt.Close(context.Background())
	var resumeOnce sync.Once
	resume := func() { resumeOnce.Do(func() { close(o.resume) }) }
	defer resume() // before Close, which waits for Slow
	ctx := context.Background()
	stub := ns.GetByName("x")

	// Hold the gate so that Quick and Slow queue up and run as one batch.
	block := durable.Go[any](ctx, stub, "Block", nil)
	<-o.entered
	quick := durable.Go[string](ctx, stub, "Quick", "v")
	slow := durable.Go[any](ctx, stub, "Slow", nil)
	close(o.block)
	if _, err := block.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	<-o.outside

	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if v, err := quick.Wait(wctx); err != nil || v != "v" {
		t.Fatalf("Quick = %q, %v while Slow is outside the gate", v, err)
	}
	// And the object still serves events.
	if v, err := durable.Call[string](wctx, stub, "Quick", "w"); err != nil || v != "w" {
		t.Fatalf("second Quick = %q, %v", v, err)
	}
	resume()
	if _, err := slow.Wait(wctx); err != nil {
		t.Fatal(err)
	}
}

// panicOutside writes, then panics outside the gate.
type panicOutside struct {
	st          *durable.State
	constructed int
}

func (o *panicOutside) Write(ctx context.Context, v string) error {
	return o.st.Storage().Put("k", []byte(v))
}

func (o *panicOutside) Read(ctx context.Context) (string, error) {
	v, _, err := o.st.Storage().Get("k")
	return string(v), err
}

func (o *panicOutside) Constructed(ctx context.Context) (int, error) { return o.constructed, nil }

func (o *panicOutside) Panic(ctx context.Context) error {
	if err := o.st.Storage().Put("k", []byte("before")); err != nil {
		return err
	}
	return o.st.OutsideGate(func() error {
		panic("boom outside the gate")
	})
}

// A panic in work done outside the gate is a handler's panic: the call
// fails with a PanicError carrying the panic's own stack, the object is
// reset (the next call builds a new instance), and the runtime still
// closes. The turn before OutsideGate committed, as OutsideGate says.
func TestPanicOutsideTheGate(t *testing.T) {
	rt := durable.NewRuntime(t.TempDir())
	constructed := 0
	ns, err := rt.Register("p", func(st *durable.State) any {
		constructed++
		return &panicOutside{st: st, constructed: constructed}
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Open(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stub := ns.GetByName("x")
	if _, err := durable.Call[any](ctx, stub, "Write", "first"); err != nil {
		t.Fatal(err)
	}
	_, err = durable.Call[any](ctx, stub, "Panic", nil)
	var pe *durable.PanicError
	if !errors.As(err, &pe) || !errors.Is(err, durable.ErrReset) || pe.Value != "boom outside the gate" || !strings.Contains(string(pe.Stack), "(*panicOutside).Panic.func1") {
		t.Fatalf("Panic = %v, want a PanicError with the panic's stack", err)
	}
	if n, err := durable.Call[int](ctx, stub, "Constructed", nil); err != nil || n != 2 {
		t.Fatalf("instance after the panic = %d, %v; want the second", n, err)
	}
	if v, err := durable.Call[string](ctx, stub, "Read", nil); err != nil || v != "before" {
		t.Fatalf("Read = %q, %v; want the write made before OutsideGate", v, err)
	}
	if err := rt.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}
