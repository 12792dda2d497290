package ratelimit_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/durableobjects/durable"
	"github.com/durableobjects/durable/durabletest"
	"github.com/durableobjects/durable/patterns/ratelimit"
)

func ExampleClient_Check() {
	dir, _ := os.MkdirTemp("", "ratelimit-example")
	defer os.RemoveAll(dir)

	rt := durable.NewRuntime(dir)
	clock := durabletest.NewClock(time.UnixMilli(1_700_000_000_000)) // a clock the example moves
	rt.Clock = clock
	limits, err := ratelimit.Register(rt)
	if err != nil {
		log.Fatal(err)
	}
	if err := rt.Open(); err != nil {
		log.Fatal(err)
	}
	defer rt.Close(context.Background())

	// At most 2 requests per second for this client.
	ctx := context.Background()
	req := ratelimit.Request{Limit: 2, WindowMS: 1000}
	for range 3 {
		res, err := limits.Check(ctx, "client-42", req)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%+v\n", res)
	}
	clock.Advance(time.Second) // both earlier requests leave the window
	res, _ := limits.Check(ctx, "client-42", req)
	fmt.Printf("%+v\n", res)
	// Output:
	// {Allowed:true Remaining:1 ResetMS:1000 RetryAfterMS:0}
	// {Allowed:true Remaining:0 ResetMS:1000 RetryAfterMS:0}
	// {Allowed:false Remaining:0 ResetMS:0 RetryAfterMS:1000}
	// {Allowed:true Remaining:1 ResetMS:1000 RetryAfterMS:0}
}
