package lock

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/durableobjects/durable"
	"github.com/durableobjects/durable/internal/fullfs"
)

// A lock keeps its record in memory (object.rec). An acquire whose commit
// fails (the disk is full when its WAL must grow) must leave nothing of
// itself behind, in memory either: afterwards the lock is free and the
// next grant's fencing follows the last durable one.
func TestAcquireWhoseCommitFailsLeavesNothing(t *testing.T) {
	mnt := fullfs.Mount(t, "4m")
	e := newEnv(t, mnt, DefaultMaxWaiters)
	ctx := context.Background()
	g, err := e.c.Acquire(ctx, "l", AcquireRequest{TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.c.Release(ctx, "l", g.Token); err != nil {
		t.Fatal(err)
	}
	filler := fullfs.Fill(t, mnt)
	_, err = e.c.Acquire(ctx, "l", AcquireRequest{TTL: time.Hour})
	filler.Close()
	if rerr := os.Remove(filler.Name()); rerr != nil {
		t.Fatal(rerr)
	}
	var pe *durable.PanicError
	if !errors.Is(err, durable.ErrReset) || errors.As(err, &pe) {
		t.Fatalf("acquire on a full disk: %v; the test needs its commit to fail (durable.ErrReset)", err)
	}
	st, err := e.c.Get(ctx, "l")
	if err != nil {
		t.Fatal(err)
	}
	if st.Held || st.Fencing != 1 {
		t.Fatalf("after the failed acquire: held %v, fencing %d; want free, fencing 1", st.Held, st.Fencing)
	}
	g, err = e.c.Acquire(ctx, "l", AcquireRequest{TTL: time.Hour})
	if err != nil || g.Fencing != 2 {
		t.Fatalf("next acquire: fencing %d, %v; want 2", g.Fencing, err)
	}
}
