package lock_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/durableobjects/durable"
	"github.com/durableobjects/durable/patterns/lock"
)

func Example() {
	dir, _ := os.MkdirTemp("", "lock-example")
	defer os.RemoveAll(dir)
	rt := durable.NewRuntime(dir)
	locks, err := lock.Register(rt)
	if err != nil {
		log.Fatal(err)
	}
	if err := rt.Open(); err != nil {
		log.Fatal(err)
	}
	defer rt.Close(context.Background())
	ctx := context.Background()

	owner := "worker-1"
	g, err := locks.Acquire(ctx, "nightly-report", lock.AcquireRequest{TTL: 30 * time.Second, Owner: &owner})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("fencing", g.Fencing)

	// A second acquire without a wait fails at once.
	_, err = locks.Acquire(ctx, "nightly-report", lock.AcquireRequest{})
	fmt.Println(errors.Is(err, lock.ErrHeld))

	// Pass g.Fencing to the storage you write to, so it can refuse writes
	// from an older holder; renew while the work lasts; release at the end.
	if _, err := locks.Renew(ctx, "nightly-report", g.Token, 30*time.Second); err != nil {
		log.Fatal(err)
	}
	if err := locks.Release(ctx, "nightly-report", g.Token); err != nil {
		log.Fatal(err)
	}
	st, _ := locks.Get(ctx, "nightly-report")
	fmt.Println(st.Held, st.Fencing)
	// Output:
	// fencing 1
	// true
	// false 1
}
