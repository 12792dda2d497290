package durable_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/durableobjects/durable"
)

type recoverObject struct {
	st      *durable.State
	entered chan struct{}
	release chan struct{}
}

var errRecoverSentinel = errors.New("recover sentinel")

// RecoverBCW recovers a panic of BlockConcurrencyWhile's callback, as a
// handler may (it only wants to log it, say).
func (o *recoverObject) RecoverBCW(ctx context.Context) error {
	func() {
		defer func() { recover() }()
		o.st.BlockConcurrencyWhile(func() error { panic("callback bug") })
	}()
	return nil
}

// Wait waits outside the gate until released.
func (o *recoverObject) Wait(ctx context.Context) error {
	return o.st.OutsideGate(func() error {
		o.entered <- struct{}{}
		<-o.release
		return nil
	})
}

func (o *recoverObject) Quick(ctx context.Context) error { return nil }

// RecoverOutside recovers a panic of OutsideGate's fn and reports its value.
func (o *recoverObject) RecoverOutside(ctx context.Context) (string, error) {
	var got any
	func() {
		defer func() { got = recover() }()
		o.st.OutsideGate(func() error { panic(errRecoverSentinel) })
	}()
	if got != errRecoverSentinel {
		return fmt.Sprintf("%T", got), nil
	}
	return "sentinel", nil
}

// PanicLater panics outside the gate once released.
func (o *recoverObject) PanicLater(ctx context.Context) error {
	return o.st.OutsideGate(func() error {
		o.entered <- struct{}{}
		<-o.release
		panic("the panic outside the gate")
	})
}

func (o *recoverObject) Panic(ctx context.Context) error { panic("the first panic") }

func newRecoverObject(t *testing.T, log *bytes.Buffer) (*durable.Namespace, *recoverObject) {
	t.Helper()
	o := &recoverObject{entered: make(chan struct{}), release: make(chan struct{})}
	rt := durable.NewRuntime(t.TempDir())
	if log != nil {
		rt.Logger = slog.New(slog.NewTextHandler(&lockedWriter{w: log}, nil))
	}
	ns, err := rt.Register("recover", func(st *durable.State) any {
		o.st = st
		return o
	})
	if err != nil {
		t.Fatal(err)
	}
	openRuntime(t, rt)
	return ns, o
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// A BlockConcurrencyWhile whose callback panics, the panic recovered by
// the handler, is over: a later OutsideGate of the instance opens the
// gate, and an event sent meanwhile runs.
func TestRecoveredBlockConcurrencyWhilePanicLeavesTheGateWorking(t *testing.T) {
	ns, o := newRecoverObject(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stub := ns.GetByName("x")
	if _, err := durable.Call[any](ctx, stub, "RecoverBCW", nil); err != nil {
		t.Fatal(err)
	}
	wait := durable.Go[any](ctx, stub, "Wait", nil)
	<-o.entered
	qctx, qcancel := context.WithTimeout(ctx, 2*time.Second)
	_, err := durable.Call[any](qctx, stub, "Quick", nil)
	qcancel()
	close(o.release)
	if _, werr := wait.Wait(ctx); werr != nil {
		t.Fatal(werr)
	}
	if err != nil {
		t.Fatalf("an event sent while a handler is outside the gate: %v (the gate stayed shut)", err)
	}
}

// A panic of OutsideGate's fn reaches the handler's own recover with the
// value fn panicked with.
func TestRecoverSeesTheOutsidePanicValue(t *testing.T) {
	ns, _ := newRecoverObject(t, nil)
	got := call[string](t, ns.GetByName("x"), "RecoverOutside", nil)
	if got != "sentinel" {
		t.Fatalf("recover() around OutsideGate got %s, want the value fn panicked with", got)
	}
}

// A panic outside the gate after the object was reset meanwhile: the call
// gets ErrReset (the instance is gone), and the panic is logged.
func TestPanicOutsideAfterAResetIsLogged(t *testing.T) {
	var log bytes.Buffer
	ns, o := newRecoverObject(t, &log)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stub := ns.GetByName("x")
	later := durable.Go[any](ctx, stub, "PanicLater", nil)
	<-o.entered
	if _, err := durable.Call[any](ctx, stub, "Panic", nil); err == nil {
		t.Fatal("Panic did not fail")
	}
	close(o.release)
	_, err := later.Wait(ctx)
	if !errors.Is(err, durable.ErrReset) {
		t.Fatalf("PanicLater = %v, want ErrReset", err)
	}
	time.Sleep(50 * time.Millisecond)
	out := log.String()
	if !strings.Contains(out, "the first panic") {
		t.Fatalf("the first panic is not logged: %s", out)
	}
	if !strings.Contains(out, "the panic outside the gate") {
		t.Errorf("the panic outside the gate, after a reset, is lost: error %v; log:\n%s", err, out)
	}
}
