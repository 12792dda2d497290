package durable_test

import (
	"context"
	"testing"

	"github.com/durableobjects/durable"
)

type s31Namer struct{ st *durable.State }

func (o *s31Namer) Name(ctx context.Context) (string, error) { return o.st.ID().Name(), nil }

// State.ID says its Name is set when the object was reached through a
// name since it was last activated. An instance activated through an ID
// without a name (an alarm, a socket event, IDFromString) and then called
// by name still reports "".
func TestStress31StateNameAfterActivationWithoutName(t *testing.T) {
	rt := durable.NewRuntime(t.TempDir())
	ns, err := rt.Register("namer", func(st *durable.State) any { return &s31Namer{st: st} })
	if err != nil {
		t.Fatal(err)
	}
	openRuntime(t, rt)
	id := ns.IDFromName("alice")
	parsed, err := ns.IDFromString(id.String())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if n, err := durable.Call[string](ctx, ns.Get(parsed), "Name", nil); err != nil || n != "" {
		t.Fatalf("through the parsed ID: %q, %v", n, err)
	}
	n, err := durable.Call[string](ctx, ns.GetByName("alice"), "Name", nil)
	if err != nil {
		t.Fatal(err)
	}
	if n != "alice" {
		t.Errorf("reached by name after an activation without one: State.ID().Name() = %q, want \"alice\"", n)
	}
}
