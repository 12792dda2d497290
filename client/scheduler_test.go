package client_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/durableobjects/durable/client"
)

// webhook records the deliveries it receives.
type webhook struct {
	mu   sync.Mutex
	got  []map[string]any
	keys []string
	*httptest.Server
}

func newWebhook(t *testing.T) *webhook {
	w := &webhook{}
	w.Server = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		json.Unmarshal(b, &m)
		w.mu.Lock()
		w.got = append(w.got, m)
		w.keys = append(w.keys, r.Header.Get("Idempotency-Key"))
		w.mu.Unlock()
	}))
	t.Cleanup(w.Close)
	return w
}

func (w *webhook) deliveries() ([]map[string]any, []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]map[string]any(nil), w.got...), append([]string(nil), w.keys...)
}

func TestScheduler(t *testing.T) {
	hook := newWebhook(t)
	s := newServer(t, withWebhook("hook", hook.URL))
	c := newClient(t, s)
	ctx := testCtx(t)

	runAt := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	ev, err := c.PutEvent(ctx, "billing", "inv:1", client.EventSpec{RunAt: runAt, Repeat: time.Minute, Payload: map[string]int{"n": 1}, Target: "hook"})
	if err != nil {
		t.Fatal(err)
	}
	want := client.Event{ID: "inv:1", RunAt: runAt, Repeat: time.Minute, Payload: json.RawMessage(`{"n":1}`), Target: "hook", State: client.StateScheduled}
	if !sameEvent(*ev, want) {
		t.Fatalf("put: %+v", ev)
	}
	got, err := c.GetEvent(ctx, "billing", "inv:1")
	if err != nil || !sameEvent(*got, want) {
		t.Fatalf("get: %+v, %v", got, err)
	}
	// Upsert: the same id replaces it; a one-shot has no repeat.
	ev, err = c.PutEvent(ctx, "billing", "inv:1", client.EventSpec{RunAt: runAt, Target: "hook"})
	if err != nil || ev.Repeat != 0 || string(ev.Payload) != "null" {
		t.Fatalf("replace: %+v (%s), %v", ev, ev.Payload, err)
	}

	// 25 more events, listed in pages of 10 by run time then id.
	for i := range 25 {
		at := runAt.Add(time.Duration(25-i) * time.Second)
		if _, err := c.PutEvent(ctx, "billing", fmt.Sprintf("e%02d", i), client.EventSpec{RunAt: at, Target: "hook"}); err != nil {
			t.Fatal(err)
		}
	}
	page, err := c.ListEvents(ctx, "billing", client.ListOptions{Limit: 10})
	if err != nil || len(page.Events) != 10 || page.NextCursor == "" || page.Events[0].ID != "inv:1" || page.Events[1].ID != "e24" {
		t.Fatalf("first page: %+v, %v", page, err)
	}
	var ids []string
	var last time.Time
	for ev, err := range c.Events(ctx, "billing", 10) {
		if err != nil {
			t.Fatal(err)
		}
		if ev.RunAt.Before(last) {
			t.Fatalf("out of order at %s", ev.ID)
		}
		last = ev.RunAt
		ids = append(ids, ev.ID)
	}
	if len(ids) != 26 || ids[25] != "e00" {
		t.Fatalf("iterated %d events: %v", len(ids), ids)
	}
	// Breaking out of the loop stops it.
	n := 0
	for range c.Events(ctx, "billing", 3) {
		n++
		if n == 4 {
			break
		}
	}
	if n != 4 {
		t.Fatalf("break: %d", n)
	}
	all, err := c.ListEvents(ctx, "billing", client.ListOptions{})
	if err != nil || len(all.Events) != 26 || all.NextCursor != "" {
		t.Fatalf("default page: %d events, cursor %q, %v", len(all.Events), all.NextCursor, err)
	}
	if _, err := c.ListEvents(ctx, "billing", client.ListOptions{Cursor: "forged"}); !errors.Is(err, client.ErrInvalidArgument) {
		t.Fatalf("forged cursor: %v", err)
	}
	for ev, err := range c.Events(ctx, "billing", 1001) {
		if !errors.Is(err, client.ErrInvalidArgument) {
			t.Fatalf("page size 1001: %+v, %v", ev, err)
		}
	}

	if err := c.DeleteEvent(ctx, "billing", "inv:1"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetEvent(ctx, "billing", "inv:1"); !client.IsNotFound(err) {
		t.Fatalf("get after delete: %v", err)
	}
	if err := c.DeleteEvent(ctx, "billing", "inv:1"); !client.IsNotFound(err) {
		t.Fatalf("delete twice: %v", err)
	}
	if _, err := c.PutEvent(ctx, "billing", "x", client.EventSpec{RunAt: runAt, Target: "nope"}); !errors.Is(err, client.ErrInvalidArgument) {
		t.Fatalf("unknown target: %v", err)
	}
	if _, err := c.PutEvent(ctx, "billing", "x", client.EventSpec{Target: "hook"}); !errors.Is(err, client.ErrInvalidArgument) {
		t.Fatalf("no run time: %v", err)
	}
	if _, err := c.PutEvent(ctx, "billing", "x", client.EventSpec{RunAt: runAt, Repeat: time.Millisecond, Target: "hook"}); !errors.Is(err, client.ErrInvalidArgument) {
		t.Fatalf("repeat under 1 s: %v", err)
	}

	// Delivery of a due event, then the one-shot is gone.
	if _, err := c.PutEvent(ctx, "now", "a:b", client.EventSpec{RunAt: time.Now(), Payload: "hi", Target: "hook"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the delivery", func() bool { d, _ := hook.deliveries(); return len(d) > 0 })
	waitFor(t, "the delivered event to go", func() bool {
		_, err := c.GetEvent(ctx, "now", "a:b")
		return client.IsNotFound(err)
	})
	d, keys := hook.deliveries()
	if d[0]["scheduler"] != "now" || d[0]["id"] != "a:b" || d[0]["payload"] != "hi" || d[0]["attempt"] != 1.0 {
		t.Fatalf("delivery: %v", d[0])
	}
	if want := fmt.Sprintf("now:a%%3Ab:%d", int64(d[0]["run_at_ms"].(float64))); keys[0] != want {
		t.Fatalf("Idempotency-Key %q, want %q", keys[0], want)
	}
}

func sameEvent(a, b client.Event) bool {
	return a.ID == b.ID && a.RunAt.Equal(b.RunAt) && a.Repeat == b.Repeat && string(a.Payload) == string(b.Payload) &&
		a.Target == b.Target && a.State == b.State && a.Attempts == b.Attempts && a.LastFiredAt.Equal(b.LastFiredAt) &&
		(a.LastError == nil) == (b.LastError == nil)
}
