package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/durableobjects/durable"
	"github.com/durableobjects/durable/durabletest"
)

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func ms(d time.Duration) int64 { return t0.Add(d).UnixMilli() }

// hook is a webhook receiver on loopback.
type hook struct {
	*httptest.Server
	calls chan call
	// handle, when set, answers instead of a plain 200.
	handle atomic.Pointer[func(w http.ResponseWriter, r *http.Request, c call)]
}

type call struct {
	Header http.Header
	Body   delivery
}

func newHook(t *testing.T) *hook {
	h := &hook{calls: make(chan call, 1000)}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var c call
		c.Header = r.Header.Clone()
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &c.Body); err != nil {
			t.Errorf("delivery body %q: %v", b, err)
		}
		h.calls <- c
		if f := h.handle.Load(); f != nil {
			(*f)(w, r, c)
		}
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hook) set(f func(w http.ResponseWriter, r *http.Request, c call)) { h.handle.Store(&f) }

func (h *hook) next(t *testing.T) call {
	t.Helper()
	select {
	case c := <-h.calls:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery within 10 s")
		return call{}
	}
}

func (h *hook) none(t *testing.T) {
	t.Helper()
	select {
	case c := <-h.calls:
		t.Fatalf("unexpected delivery %+v", c.Body)
	case <-time.After(100 * time.Millisecond):
	}
}

// env is a runtime with the scheduler class on a fake clock.
type env struct {
	rt    *durable.Runtime
	c     *Client
	clock *durabletest.Clock
}

func open(t *testing.T, dir string, clock *durabletest.Clock, opts Options) *env {
	t.Helper()
	rt := durable.NewRuntime(dir)
	if clock != nil {
		rt.Clock = clock
	}
	c, err := Register(rt, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close(context.Background()) })
	return &env{rt: rt, c: c, clock: clock}
}

func (e *env) close(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.rt.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func (e *env) put(t *testing.T, name, id string, spec Spec) Event {
	t.Helper()
	ev, err := e.c.Put(context.Background(), name, id, spec)
	if err != nil {
		t.Fatalf("put %s/%s: %v", name, id, err)
	}
	return ev
}

// waitEvent polls Get until cond holds (ev is nil for ErrNotFound).
func (e *env) waitEvent(t *testing.T, name, id, what string, cond func(ev *Event) bool) *Event {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ev, err := e.c.Get(context.Background(), name, id)
		var p *Event
		switch {
		case err == nil:
			p = &ev
		case !errors.Is(err, ErrNotFound):
			t.Fatal(err)
		}
		if cond(p) {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; last %+v", what, p)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// armed waits until the runtime's alarm loop has armed its timer for at:
// moving the fake clock while the loop arms it (it computes a delay from
// the clock, then arms it) would push the timer late.
func (e *env) armed(t *testing.T, at time.Time) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !e.clock.HasTimer(at) {
		if time.Now().After(deadline) {
			t.Fatalf("no alarm timer armed for %v", at)
		}
		time.Sleep(time.Millisecond)
	}
}

func hooks(h *hook) map[string]string { return map[string]string{"hook": h.URL + "/hook"} }

func TestIdempotencyKey(t *testing.T) {
	for _, tc := range []struct {
		name, id string
		runAt    int64
		want     string
	}{
		{"s", "e", 5, "s:e:5"},
		{"AZaz09-._~", "x", 0, "AZaz09-._~:x:0"},
		{"a:b", "c/d", 1, "a%3Ab:c%2Fd:1"},
		{"sp ace", "pct%", 2, "sp%20ace:pct%25:2"},
		{"é", "日", 3, "%C3%A9:%E6%97%A5:3"},
		{"+&=?#", "\x7f", 4, "%2B%26%3D%3F%23:%7F:4"},
	} {
		if got := IdempotencyKey(tc.name, tc.id, tc.runAt); got != tc.want {
			t.Errorf("IdempotencyKey(%q, %q, %d) = %q, want %q", tc.name, tc.id, tc.runAt, got, tc.want)
		}
	}
}

func TestSlots(t *testing.T) {
	for _, tc := range []struct{ runAt, repeat, now, latest, next int64 }{
		{100, 10, 100, 100, 110},
		{100, 10, 105, 100, 110},
		{100, 10, 109, 100, 110},
		{100, 10, 110, 110, 120},
		{100, 10, 155, 150, 160},
		{100, 10, 90, 100, 110}, // not yet due (the clock went back)
		{0, 1000, MaxTime, MaxTime - MaxTime%1000, MaxTime - MaxTime%1000 + 1000},
	} {
		if got := latestSlot(tc.runAt, tc.repeat, tc.now); got != tc.latest {
			t.Errorf("latestSlot(%d, %d, %d) = %d, want %d", tc.runAt, tc.repeat, tc.now, got, tc.latest)
		}
		if got := nextSlot(latestSlot(tc.runAt, tc.repeat, tc.now), tc.repeat, tc.now); got != tc.next {
			t.Errorf("nextSlot after %d at %d = %d, want %d", tc.runAt, tc.now, got, tc.next)
		}
	}
}

func TestBackoff(t *testing.T) {
	for attempt := 1; attempt <= 40; attempt++ {
		base := min(RetryInitial<<min(attempt-1, 20), RetryMax)
		seen := map[time.Duration]bool{}
		for range 200 {
			d := backoff(attempt)
			if d < base || d > base+base/4 {
				t.Fatalf("backoff(%d) = %v, want in [%v, %v]", attempt, d, base, base+base/4)
			}
			seen[d] = true
		}
		if len(seen) < 10 {
			t.Fatalf("backoff(%d): only %d distinct values in 200: no jitter", attempt, len(seen))
		}
	}
	if d := backoff(9); d < 256*time.Second {
		t.Fatalf("backoff(9) = %v", d)
	}
	if d := backoff(10); d < RetryMax || d > RetryMax+RetryMax/4 {
		t.Fatalf("backoff(10) = %v, want capped at %v", d, RetryMax)
	}
}

func TestCursor(t *testing.T) {
	key, other := []byte("0123456789abcdef0123456789abcdef"), []byte("another key, another scheduler!!")
	for _, p := range []struct {
		runAt int64
		id    string
	}{{0, "a"}, {MaxTime, strings.Repeat("é", 128)}, {-5, "x:y/z"}} {
		c := makeCursor(key, p.runAt, p.id)
		runAt, id, err := parseCursor(key, c)
		if err != nil || runAt != p.runAt || id != p.id {
			t.Fatalf("round trip of %v: %d %q %v", p, runAt, id, err)
		}
		if _, _, err := parseCursor(other, c); !errors.Is(err, ErrBadCursor) {
			t.Fatalf("cursor accepted with another key: %v", err)
		}
		for i := range c {
			b := []byte(c)
			b[i] ^= 1
			if _, _, err := parseCursor(key, string(b)); !errors.Is(err, ErrBadCursor) {
				t.Fatalf("cursor with byte %d altered accepted", i)
			}
		}
		for _, bad := range []string{c[:len(c)-1], c + "A", c + "=", "", "!!!!"} {
			if _, _, err := parseCursor(key, bad); !errors.Is(err, ErrBadCursor) {
				t.Fatalf("cursor %q accepted", bad)
			}
		}
	}
}

func TestValidate(t *testing.T) {
	cfg := &config{targets: map[string]string{"hook": "http://127.0.0.1:1/"}}
	i64 := func(v int64) *int64 { return &v }
	for _, tc := range []struct {
		spec Spec
		err  error
	}{
		{Spec{RunAtMS: 0, Target: "hook"}, nil},
		{Spec{RunAtMS: MaxTime, Target: "hook"}, nil},
		{Spec{RunAtMS: -1, Target: "hook"}, ErrInvalid},
		{Spec{RunAtMS: MaxTime + 1, Target: "hook"}, ErrInvalid},
		{Spec{RepeatMS: i64(MinRepeat), Target: "hook"}, nil},
		{Spec{RepeatMS: i64(MinRepeat - 1), Target: "hook"}, ErrInvalid},
		{Spec{RepeatMS: i64(MaxTime), Target: "hook"}, nil},
		{Spec{RepeatMS: i64(MaxTime + 1), Target: "hook"}, ErrInvalid},
		{Spec{Payload: json.RawMessage(`"` + strings.Repeat("x", MaxPayload-2) + `"`), Target: "hook"}, nil},
		{Spec{Payload: json.RawMessage(`"` + strings.Repeat("x", MaxPayload-1) + `"`), Target: "hook"}, ErrInvalid},
		{Spec{Payload: json.RawMessage(`{"a":`), Target: "hook"}, ErrInvalid},
		{Spec{Target: "nope"}, ErrUnknownTarget},
		{Spec{Target: ""}, ErrUnknownTarget},
	} {
		err := cfg.validate(&tc.spec)
		if (tc.err == nil) != (err == nil) || (tc.err != nil && !errors.Is(err, tc.err)) {
			t.Errorf("validate(%+v) = %v, want %v", tc.spec.RunAtMS, err, tc.err)
		}
	}
	s := Spec{Payload: json.RawMessage(" { \"a\" : [ 1 , 2 ] } "), Target: "hook"}
	if err := cfg.validate(&s); err != nil || string(s.Payload) != `{"a":[1,2]}` {
		t.Fatalf("payload %q, %v: want it compacted", s.Payload, err)
	}
	s = Spec{Payload: json.RawMessage(" null "), Target: "hook"}
	if err := cfg.validate(&s); err != nil || s.Payload != nil {
		t.Fatalf("payload %q, %v: want null as empty", s.Payload, err)
	}
}

func TestRegisterRejectsBadWebhooks(t *testing.T) {
	for _, u := range []string{"", "/relative", "ftp://h/x", "http://", "://x", "localhost:80"} {
		rt := durable.NewRuntime(t.TempDir())
		if _, err := Register(rt, Options{Webhooks: map[string]string{"w": u}}); err == nil {
			t.Errorf("webhook URL %q accepted", u)
		}
	}
}

func TestClientCRUDAndErrors(t *testing.T) {
	h := newHook(t)
	e := open(t, t.TempDir(), durabletest.NewClock(t0), Options{Webhooks: hooks(h)})
	ctx := context.Background()
	if _, err := e.c.Get(ctx, "s", "x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get on a new scheduler: %v", err)
	}
	if err := e.c.Delete(ctx, "s", "x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Delete on a new scheduler: %v", err)
	}
	if p, err := e.c.List(ctx, "s", 0, ""); err != nil || len(p.Events) != 0 || p.NextCursor != nil || p.Events == nil {
		t.Fatalf("List on a new scheduler: %+v %v", p, err)
	}
	if _, err := e.c.List(ctx, "s", 0, "AAAA"); !errors.Is(err, ErrBadCursor) {
		t.Fatalf("cursor on a new scheduler: %v", err)
	}
	if files, _ := filepath.Glob(filepath.Join(e.rt.Dir, Class, "*", "*.sqlite")); len(files) != 0 {
		t.Fatalf("reads created files: %v", files)
	}
	for _, l := range []int{-1, MaxListLimit + 1} {
		if _, err := e.c.List(ctx, "s", l, ""); !errors.Is(err, ErrInvalid) {
			t.Fatalf("limit %d: %v", l, err)
		}
	}
	if _, err := e.c.Put(ctx, "s", "", Spec{Target: "hook"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty id: %v", err)
	}
	if _, err := e.c.Put(ctx, "s", "\xff", Spec{Target: "hook"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("invalid UTF-8 id: %v", err)
	}
	if _, err := e.c.Put(ctx, "s", "x", Spec{Target: "nope"}); !errors.Is(err, ErrUnknownTarget) {
		t.Fatalf("unknown target: %v", err)
	}
	rep := int64(5000)
	ev := e.put(t, "s", "x", Spec{RunAtMS: ms(time.Hour), RepeatMS: &rep, Payload: json.RawMessage(`[1]`), Target: "hook"})
	want := Event{ID: "x", RunAtMS: ms(time.Hour), RepeatMS: &rep, Payload: json.RawMessage(`[1]`), Target: "hook", State: StateScheduled}
	got, err := e.c.Get(ctx, "s", "x")
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range []Event{ev, got} {
		if ev.ID != want.ID || ev.RunAtMS != want.RunAtMS || *ev.RepeatMS != rep || string(ev.Payload) != "[1]" ||
			ev.Target != "hook" || ev.State != StateScheduled || ev.Attempts != 0 || ev.LastFiredAtMS != nil || ev.LastError != nil {
			t.Fatalf("event %+v, want %+v", ev, want)
		}
	}
	if err := e.c.Delete(ctx, "s", "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.Get(ctx, "s", "x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Delete: %v", err)
	}
	// The last event deleted, the alarm is gone too.
	e.clock.Advance(2 * time.Hour)
	h.none(t)
}

func TestDeliveryTimeout(t *testing.T) {
	h := newHook(t)
	release := make(chan struct{})
	defer close(release)
	h.set(func(w http.ResponseWriter, r *http.Request, c call) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	e := open(t, t.TempDir(), durabletest.NewClock(t0), Options{Webhooks: hooks(h), Timeout: 50 * time.Millisecond})
	e.put(t, "s", "x", Spec{RunAtMS: ms(0), Target: "hook"})
	h.next(t)
	ev := e.waitEvent(t, "s", "x", "the timeout", func(ev *Event) bool { return ev.Attempts == 1 })
	if ev.LastError == nil || !strings.Contains(*ev.LastError, "no answer within 50ms") {
		t.Fatalf("last_error %v", ev.LastError)
	}
}

func TestRedirectIsAFailure(t *testing.T) {
	h := newHook(t)
	var followed atomic.Bool
	h.set(func(w http.ResponseWriter, r *http.Request, c call) {
		if r.URL.Path == "/elsewhere" {
			followed.Store(true)
			return
		}
		http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
	})
	e := open(t, t.TempDir(), durabletest.NewClock(t0), Options{Webhooks: hooks(h)})
	e.put(t, "s", "x", Spec{RunAtMS: ms(0), Target: "hook"})
	h.next(t)
	ev := e.waitEvent(t, "s", "x", "the failure", func(ev *Event) bool { return ev.Attempts == 1 })
	if ev.LastError == nil || !strings.Contains(*ev.LastError, "307") || followed.Load() {
		t.Fatalf("last_error %v, followed %v", ev.LastError, followed.Load())
	}
}

func TestConcurrencyAndBatchesAreBounded(t *testing.T) {
	h := newHook(t)
	var inflight, peak atomic.Int64
	release := make(chan struct{})
	h.set(func(w http.ResponseWriter, r *http.Request, c call) {
		n := inflight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		<-release
		inflight.Add(-1)
	})
	e := open(t, t.TempDir(), durabletest.NewClock(t0), Options{Webhooks: hooks(h), Concurrency: 3, Batch: 7})
	const n = 30
	for i := range n {
		e.put(t, "s", fmt.Sprintf("e%02d", i), Spec{RunAtMS: ms(time.Second), Target: "hook"})
	}
	runs := e.rt.Stats().AlarmRuns
	e.armed(t, t0.Add(time.Second))
	e.clock.Set(t0.Add(time.Second))
	for range 3 {
		h.next(t)
	}
	h.none(t) // a fourth would exceed the bound
	if p := peak.Load(); p != 3 {
		t.Fatalf("%d deliveries in flight, want 3", p)
	}
	// Reads and writes of the scheduler go on while it delivers.
	if _, err := e.c.Get(context.Background(), "s", "e00"); err != nil {
		t.Fatal(err)
	}
	close(release)
	got := map[string]int{}
	for range n - 3 {
		got[h.next(t).Body.ID]++
	}
	h.none(t)
	if len(got) != n-3 || peak.Load() != 3 {
		t.Fatalf("%d distinct deliveries after the first 3, peak %d", len(got), peak.Load())
	}
	e.waitEvent(t, "s", fmt.Sprintf("e%02d", n-1), "the last event to go", func(ev *Event) bool { return ev == nil })
	// 30 due events in batches of 7: 5 alarm runs (plus at most one early wake-up).
	if r := e.rt.Stats().AlarmRuns - runs; r < 5 || r > 6 {
		t.Fatalf("%d alarm runs for 30 events in batches of 7", r)
	}
}

func TestChangesDuringDeliveryWin(t *testing.T) {
	h := newHook(t)
	release := map[string]chan struct{}{"a-replaced": make(chan struct{}), "b-deleted": make(chan struct{})}
	h.set(func(w http.ResponseWriter, r *http.Request, c call) {
		if ch := release[c.Body.ID]; ch != nil {
			<-ch
		}
	})
	// One delivery at a time, in id order: each outcome is recorded before
	// the next event is sent, so once the marker is gone the other two
	// outcomes were handled.
	e := open(t, t.TempDir(), durabletest.NewClock(t0), Options{Webhooks: hooks(h), Concurrency: 1})
	e.put(t, "s", "a-replaced", Spec{RunAtMS: ms(time.Second), Target: "hook"})
	e.put(t, "s", "b-deleted", Spec{RunAtMS: ms(time.Second), Target: "hook"})
	e.put(t, "s", "c-marker", Spec{RunAtMS: ms(time.Second), Target: "hook"})
	e.armed(t, t0.Add(time.Second))
	e.clock.Set(t0.Add(time.Second))
	// While each delivery waits outside the gate, its event is replaced or
	// deleted: the outcome must not touch the new version.
	if c := h.next(t); c.Body.ID != "a-replaced" {
		t.Fatalf("first delivery %+v", c.Body)
	}
	rep := int64(60_000)
	e.put(t, "s", "a-replaced", Spec{RunAtMS: ms(time.Hour), RepeatMS: &rep, Target: "hook"})
	close(release["a-replaced"])
	if c := h.next(t); c.Body.ID != "b-deleted" {
		t.Fatalf("second delivery %+v", c.Body)
	}
	if err := e.c.Delete(context.Background(), "s", "b-deleted"); err != nil {
		t.Fatal(err)
	}
	close(release["b-deleted"])
	h.next(t)
	e.waitEvent(t, "s", "c-marker", "the marker's outcome", func(ev *Event) bool { return ev == nil })
	ev, err := e.c.Get(context.Background(), "s", "a-replaced")
	if err != nil || ev.RunAtMS != ms(time.Hour) || ev.Attempts != 0 || ev.LastFiredAtMS != nil {
		t.Fatalf("replaced event %+v %v", ev, err)
	}
	if _, err := e.c.Get(context.Background(), "s", "b-deleted"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted event: %v", err)
	}
	e.armed(t, t0.Add(time.Hour))
	e.clock.Set(t0.Add(time.Hour))
	if c := h.next(t); c.Body.ID != "a-replaced" || c.Body.RunAtMS != ms(time.Hour) {
		t.Fatalf("delivery %+v", c.Body)
	}
}

// A webhook that does not answer holds up neither the other events of its
// scheduler nor their retries: each outcome is recorded when its own
// delivery ends, and events that come due meanwhile are sent at once.
func TestSlowWebhookHoldsUpNoOtherEvent(t *testing.T) {
	h := newHook(t)
	release := make(chan struct{})
	h.set(func(w http.ResponseWriter, r *http.Request, c call) {
		switch c.Body.ID {
		case "slow":
			<-release
		case "flaky":
			if c.Body.Attempt == 1 {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
		}
	})
	e := open(t, t.TempDir(), durabletest.NewClock(t0), Options{Webhooks: hooks(h), Timeout: time.Hour})
	defer close(release)
	e.put(t, "s", "slow", Spec{RunAtMS: ms(time.Second), Target: "hook"})
	e.put(t, "s", "later", Spec{RunAtMS: ms(2 * time.Second), Target: "hook"})
	e.put(t, "s", "flaky", Spec{RunAtMS: ms(2 * time.Second), Target: "hook"})
	e.armed(t, t0.Add(time.Second))
	e.clock.Set(t0.Add(time.Second))
	if c := h.next(t); c.Body.ID != "slow" {
		t.Fatalf("first delivery %+v", c.Body)
	}
	// Events due after the slow one was sent go out while it hangs.
	e.armed(t, t0.Add(2*time.Second))
	e.clock.Set(t0.Add(2 * time.Second))
	got := map[string]bool{}
	for range 2 {
		got[h.next(t).Body.ID] = true
	}
	if !got["later"] || !got["flaky"] {
		t.Fatalf("deliveries at 2 s: %v", got)
	}
	e.waitEvent(t, "s", "later", "later's outcome", func(ev *Event) bool { return ev == nil })
	// flaky's failure is recorded, and its retry is sent after its backoff.
	ev := e.waitEvent(t, "s", "flaky", "flaky's failure", func(ev *Event) bool { return ev != nil && ev.Attempts == 1 })
	if ev.LastError == nil || !strings.Contains(*ev.LastError, "503") {
		t.Fatalf("flaky after its first attempt: %+v", ev)
	}
	h.none(t) // not before its backoff (the clock stands still)
	e.clock.Set(t0.Add(2*time.Second + RetryInitial*5/4))
	if c := h.next(t); c.Body.ID != "flaky" || c.Body.Attempt != 2 {
		t.Fatalf("retry %+v", c.Body)
	}
	e.waitEvent(t, "s", "flaky", "flaky's retry to succeed", func(ev *Event) bool { return ev == nil })
	// An event put for now while the slow one still hangs goes at once.
	e.put(t, "s", "now", Spec{RunAtMS: ms(2 * time.Second), Target: "hook"})
	if c := h.next(t); c.Body.ID != "now" {
		t.Fatalf("delivery %+v", c.Body)
	}
	e.waitEvent(t, "s", "now", "now's outcome", func(ev *Event) bool { return ev == nil })
	if ev, err := e.c.Get(context.Background(), "s", "slow"); err != nil || ev.Attempts != 0 {
		t.Fatalf("slow, still in flight: %+v %v", ev, err)
	}
}

func TestUnconfiguredTargetFails(t *testing.T) {
	h := newHook(t)
	dir := t.TempDir()
	e := open(t, dir, durabletest.NewClock(t0), Options{Webhooks: hooks(h)})
	e.put(t, "s", "x", Spec{RunAtMS: ms(time.Minute), Target: "hook"})
	e.close(t)
	// Restarted without that webhook: the delivery fails and is retried.
	e = open(t, dir, durabletest.NewClock(t0.Add(time.Minute)), Options{Webhooks: map[string]string{"new": h.URL}})
	ev := e.waitEvent(t, "s", "x", "the failure", func(ev *Event) bool { return ev.Attempts == 1 })
	if ev.LastError == nil || !strings.Contains(*ev.LastError, "not configured") || ev.State != StateScheduled {
		t.Fatalf("event %+v", ev)
	}
	h.none(t)
}

func TestShutdownCutsDeliveryShortAndDeliversAgain(t *testing.T) {
	h := newHook(t)
	h.set(func(w http.ResponseWriter, r *http.Request, c call) { <-r.Context().Done() })
	dir := t.TempDir()
	e := open(t, dir, durabletest.NewClock(t0), Options{Webhooks: hooks(h), Timeout: time.Hour})
	e.put(t, "s", "x", Spec{RunAtMS: ms(time.Second), Target: "hook"})
	e.armed(t, t0.Add(time.Second))
	e.clock.Set(t0.Add(time.Second))
	first := h.next(t)
	e.close(t) // returns although the webhook never answers
	h.set(func(w http.ResponseWriter, r *http.Request, c call) {})
	// Restart a minute later: an alarm the runtime fires while it closes
	// (after BeginClose, before its alarm loop stops) fails its lookup
	// with ErrClosed, and fireAlarm then moves the index entry 2 s past
	// the alarm, so a restart within those 2 s (on a clock that does not
	// move) would not see it due. Reported; not this package's to fix.
	e = open(t, dir, durabletest.NewClock(t0.Add(time.Minute)), Options{Webhooks: hooks(h)})
	again := h.next(t)
	if again.Body.Attempt != 1 || again.Header.Get("Idempotency-Key") != first.Header.Get("Idempotency-Key") {
		t.Fatalf("second delivery %+v, key %q", again.Body, again.Header.Get("Idempotency-Key"))
	}
	e.waitEvent(t, "s", "x", "the delivered event to go", func(ev *Event) bool { return ev == nil })
}

// The crash test runs a scheduler in a child process (this test binary,
// re-executed) and kills it with SIGKILL while its webhook request is in
// flight: the event must be delivered again when the data directory is
// opened again.
const childEnv = "SCHEDULER_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "deliver" {
		crashChild(os.Getenv("SCHEDULER_TEST_DIR"), os.Getenv("SCHEDULER_TEST_HOOK"))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func crashChild(dir, hookURL string) {
	rt := durable.NewRuntime(dir)
	c, err := Register(rt, Options{Webhooks: map[string]string{"hook": hookURL}})
	if err == nil {
		err = rt.Open()
	}
	if err == nil {
		_, err = c.Put(context.Background(), "crash", "e", Spec{RunAtMS: time.Now().UnixMilli(), Target: "hook", Payload: json.RawMessage(`"p"`)})
	}
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	select {} // deliver, and wait to be killed
}

func TestCrashMidDeliveryDeliversAgain(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test")
	}
	dir := t.TempDir()
	var child *exec.Cmd
	var mu sync.Mutex
	killed := make(chan struct{})
	var once sync.Once
	h := newHook(t)
	h.set(func(w http.ResponseWriter, r *http.Request, c call) {
		// The child is mid-delivery: kill it before it hears the answer.
		once.Do(func() {
			mu.Lock()
			child.Process.Signal(syscall.SIGKILL)
			mu.Unlock()
			close(killed)
		})
	})
	mu.Lock()
	child = exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), childEnv+"=deliver", "SCHEDULER_TEST_DIR="+dir, "SCHEDULER_TEST_HOOK="+h.URL+"/hook")
	child.Stdout, child.Stderr = os.Stderr, os.Stderr
	if err := child.Start(); err != nil {
		mu.Unlock()
		t.Fatal(err)
	}
	mu.Unlock()
	first := h.next(t)
	<-killed
	child.Wait()

	h.set(func(w http.ResponseWriter, r *http.Request, c call) {})
	e := open(t, dir, nil, Options{Webhooks: hooks(h)})
	again := h.next(t)
	if again.Body.ID != "e" || again.Body.Scheduler != "crash" || again.Body.RunAtMS != first.Body.RunAtMS ||
		again.Header.Get("Idempotency-Key") != first.Header.Get("Idempotency-Key") || string(again.Body.Payload) != `"p"` {
		t.Fatalf("after the crash: %+v (key %q), first %+v", again.Body, again.Header.Get("Idempotency-Key"), first.Body)
	}
	e.waitEvent(t, "crash", "e", "the delivered event to go", func(ev *Event) bool { return ev == nil })
	h.none(t)
}

// An alarm run whose deliveries end at different times leaves the alarm at
// the next due event only: no alarm in the past that would wake the
// scheduler again for nothing once the run ends.
func TestRunEndsWithoutAnExtraWakeUp(t *testing.T) {
	h := newHook(t)
	release := make(chan struct{})
	h.set(func(w http.ResponseWriter, r *http.Request, c call) {
		if c.Body.ID == "slow" {
			<-release
		}
	})
	e := open(t, t.TempDir(), durabletest.NewClock(t0), Options{Webhooks: hooks(h)})
	e.put(t, "s", "fast", Spec{RunAtMS: ms(time.Second), Target: "hook"})
	e.put(t, "s", "slow", Spec{RunAtMS: ms(time.Second), Target: "hook"})
	e.armed(t, t0.Add(time.Second))
	before := e.rt.Stats().Events
	e.clock.Set(t0.Add(time.Second))
	h.next(t)
	h.next(t)
	time.Sleep(200 * time.Millisecond) // fast's outcome is recorded while slow hangs
	close(release)
	time.Sleep(500 * time.Millisecond) // the run ends, and any wake-up it left follows at once
	if n := e.rt.Stats().Events - before; n != 1 {
		t.Fatalf("%d object events for one alarm run, want 1", n)
	}
	for _, id := range []string{"fast", "slow"} {
		if _, err := e.c.Get(context.Background(), "s", id); !errors.Is(err, ErrNotFound) {
			t.Fatalf("%s after its delivery: %v", id, err)
		}
	}
}
