package client_test

import (
	"errors"
	"testing"
	"time"

	"github.com/durableobjects/durable/client"
)

func TestCheckRateLimit(t *testing.T) {
	s := newServer(t)
	c := newClient(t, s)
	ctx := testCtx(t)
	req := client.CheckRequest{Limit: 3, Window: time.Hour}
	for i := range 3 {
		res, err := c.CheckRateLimit(ctx, "user:1", req)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Allowed || res.Remaining != int64(2-i) || res.Reset <= 0 || res.Reset > time.Hour || res.RetryAfter != 0 {
			t.Fatalf("check %d: %+v", i, res)
		}
	}
	// Denied: a result, not an error.
	res, err := c.CheckRateLimit(ctx, "user:1", req)
	if err != nil {
		t.Fatalf("denied check: %v", err)
	}
	if res.Allowed || res.Remaining != 0 || res.RetryAfter <= 0 || res.RetryAfter > time.Hour {
		t.Fatalf("denied: %+v", res)
	}
	// Another key has its own budget; cost and algorithm are sent.
	res, err = c.CheckRateLimit(ctx, "user/2 é", client.CheckRequest{Limit: 10, Window: time.Hour, Cost: 4, Algorithm: client.TokenBucket})
	if err != nil || !res.Allowed || res.Remaining != 6 {
		t.Fatalf("token bucket: %+v, %v", res, err)
	}
	res, err = c.CheckRateLimit(ctx, "user/2 é", client.CheckRequest{Limit: 10, Window: time.Hour, Cost: 7, Algorithm: client.TokenBucket})
	if err != nil || res.Allowed {
		t.Fatalf("token bucket over budget: %+v, %v", res, err)
	}
}

func TestCheckRateLimitErrors(t *testing.T) {
	s := newServer(t)
	c := newClient(t, s)
	ctx := testCtx(t)
	for _, tc := range []struct {
		name string
		key  string
		req  client.CheckRequest
	}{
		{"no limit", "k", client.CheckRequest{Window: time.Second}},
		{"no window", "k", client.CheckRequest{Limit: 1}},
		{"cost over limit", "k", client.CheckRequest{Limit: 1, Window: time.Second, Cost: 2}},
		{"bad algorithm", "k", client.CheckRequest{Limit: 1, Window: time.Second, Algorithm: "leaky"}},
		{"long key", string(make([]byte, 257)), client.CheckRequest{Limit: 1, Window: time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.CheckRateLimit(ctx, tc.key, tc.req)
			var e *client.Error
			if !errors.Is(err, client.ErrInvalidArgument) || !errors.As(err, &e) || e.Status != 400 || e.Message == "" {
				t.Fatalf("got %v, want a 400 invalid_argument", err)
			}
		})
	}
	// An empty key is refused before sending.
	_, err := c.CheckRateLimit(ctx, "", client.CheckRequest{Limit: 1, Window: time.Second})
	var e *client.Error
	if !errors.Is(err, client.ErrInvalidArgument) || !errors.As(err, &e) || e.Status != 0 {
		t.Fatalf("empty key: %v", err)
	}
}
