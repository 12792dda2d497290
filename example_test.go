package durable_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/durableobjects/durable"
)

// Counter is an object: one instance per name, one event at a time.
type Counter struct {
	st *durable.State
}

// Add adds n to the stored count and returns the new count.
func (c *Counter) Add(ctx context.Context, n int) (int, error) {
	s := c.st.Storage()
	v, _, err := durable.Get[int](s, "count")
	if err != nil {
		return 0, err
	}
	v += n
	return v, durable.Put(s, "count", v)
}

func Example() {
	dir, _ := os.MkdirTemp("", "durable-example")
	defer os.RemoveAll(dir)

	rt := durable.NewRuntime(dir)
	counters, err := rt.Register("counter", func(st *durable.State) any { return &Counter{st: st} })
	if err != nil {
		log.Fatal(err)
	}
	if err := rt.Open(); err != nil {
		log.Fatal(err)
	}
	defer rt.Close(context.Background())

	ctx := context.Background()
	stub := counters.GetByName("visits")
	for range 3 {
		n, err := durable.Call[int](ctx, stub, "Add", 1)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(n)
	}
	// Output:
	// 1
	// 2
	// 3
}
