package durable

import (
	"context"
	"testing"
)

type plainObject struct{}

// A send from another goroutine (a handler's goroutine calling
// WebSocket.Send) while a bare event holds the gate joins that event's
// release, like a send during any other event.
func TestSendDuringABareEventJoinsIt(t *testing.T) {
	rt := NewRuntime(t.TempDir())
	ns, err := rt.Register("obj", func(st *State) any { return &plainObject{} })
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Open(); err != nil {
		t.Fatal(err)
	}
	defer rt.Close(context.Background())
	o, err := rt.lookup(ns, [32]byte{1})
	if err != nil {
		t.Fatal(err)
	}
	sent := make(chan struct{})
	panicked := make(chan any, 1)
	done, err := o.submitBare(func(ctx context.Context, o *object) {
		joined := make(chan struct{})
		go func() {
			defer close(joined)
			defer func() { panicked <- recover() }()
			o.holdOutput(func() { close(sent) })
		}()
		<-joined
		select {
		case <-sent:
			t.Error("the send left before the event's release")
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if v := <-panicked; v != nil {
		t.Fatalf("the send panicked: %v", v)
	}
	<-sent // released with the event
}
