package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/durableobjects/durable/client"
)

func Example() {
	srv, stop := exampleServer() // `durable serve`, in process
	defer stop()
	ctx := context.Background()

	c, err := client.New(srv.URL)
	if err != nil {
		log.Fatal(err)
	}

	// A denied rate-limit check is a result, not an error.
	for range 3 {
		res, err := c.CheckRateLimit(ctx, "user:42", client.CheckRequest{Limit: 2, Window: time.Minute})
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("allowed:", res.Allowed, "remaining:", res.Remaining, "must wait:", res.RetryAfter > 0)
	}

	// Locks: the fencing number goes to the resource the lock protects.
	lock, err := c.AcquireLock(ctx, "nightly-report", client.AcquireOptions{TTL: 30 * time.Second, Owner: "host-1"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("fencing:", lock.Fencing)
	_, err = c.AcquireLock(ctx, "nightly-report", client.AcquireOptions{})
	fmt.Println("held by another:", errors.Is(err, client.ErrLockHeld))
	if err := c.ReleaseLock(ctx, lock.Name, lock.Token); err != nil {
		log.Fatal(err)
	}

	// Sessions; a missing one is ErrNotFound.
	s, err := c.CreateSession(ctx, client.CreateSessionRequest{UserID: "u42", Data: map[string]string{"theme": "dark"}})
	if err != nil {
		log.Fatal(err)
	}
	got, err := c.GetSession(ctx, s.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("session data:", string(got.Data))
	_, err = c.GetSession(ctx, "no-such-session")
	fmt.Println("missing session:", client.IsNotFound(err))

	// Output:
	// allowed: true remaining: 1 must wait: false
	// allowed: true remaining: 0 must wait: false
	// allowed: false remaining: 0 must wait: true
	// fencing: 1
	// held by another: true
	// session data: {"theme":"dark"}
	// missing session: true
}

func ExampleClient_DialDoc() {
	srv, stop := exampleServer()
	defer stop()
	ctx := context.Background()
	c, err := client.New(srv.URL)
	if err != nil {
		log.Fatal(err)
	}

	doc, err := c.DialDoc(ctx, "notes")
	if err != nil {
		log.Fatal(err)
	}
	defer doc.Close()
	fmt.Printf("init: %q at version %d\n", doc.Init.Content, doc.Init.Version)

	// Edit on top of the version we saw; another writer would make it a
	// conflict carrying the current content.
	if err := doc.EditIf(ctx, "hello", doc.Init.Version); err != nil {
		log.Fatal(err)
	}
	m, err := doc.Read(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(m.Type, m.Version)

	// An HTTP write reaches the socket as an edit.
	if _, err := c.PutDoc(ctx, "notes", "hello, world"); err != nil {
		log.Fatal(err)
	}
	m, err = doc.Read(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s: %q at version %d\n", m.Type, m.Content, m.Version)

	// Output:
	// init: "" at version 0
	// ack 1
	// edit: "hello, world" at version 2
}

func ExampleClient_Events() {
	// A server with a webhook target named "invoices".
	srv, stop := exampleServer(withWebhook("invoices", "http://127.0.0.1:9/hook"))
	defer stop()
	ctx := context.Background()
	c, err := client.New(srv.URL)
	if err != nil {
		log.Fatal(err)
	}
	due := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, id := range []string{"c", "a", "b"} {
		spec := client.EventSpec{RunAt: due.Add(time.Duration(i) * time.Hour), Target: "invoices", Payload: map[string]int{"n": i}}
		if _, err := c.PutEvent(ctx, "billing", id, spec); err != nil {
			log.Fatal(err)
		}
	}
	// Pages of 2, fetched as the loop goes on; in run-time order.
	for ev, err := range c.Events(ctx, "billing", 2) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(ev.ID, ev.RunAt.UTC().Format(time.TimeOnly), string(ev.Payload))
	}
	// Output:
	// c 00:00:00 {"n":0}
	// a 01:00:00 {"n":1}
	// b 02:00:00 {"n":2}
}
