package gateway

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/durableobjects/durable"
	"github.com/durableobjects/durable/durabletest"
	"github.com/durableobjects/durable/patterns/scheduler"
)

// schedT0 is when the scheduler tests' fake clocks start.
var schedT0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func schedMS(d time.Duration) int64 { return schedT0.Add(d).UnixMilli() }

// schedAwaitTimer waits until the runtime's alarm loop has armed its timer
// for at. The loop computes a delay from the clock and then arms it, so a
// test that moved the fake clock in between would push the timer late:
// move the clock only once the timer is armed.
func schedAwaitTimer(t *testing.T, c *durabletest.Clock, at time.Time) {
	t.Helper()
	schedPoll(t, "the alarm timer for "+at.String(), func() bool { return c.HasTimer(at) })
}

// schedAwaitRetryTimer waits until the alarm loop has armed a timer, when
// its time is not known (a retry with jitter): two timers are pending then,
// the runtime's eviction tick and the alarm loop's.
func schedAwaitRetryTimer(t *testing.T, c *durabletest.Clock) {
	t.Helper()
	schedPoll(t, "the retry timer", func() bool { return c.Pending() == 2 })
}

func schedPoll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// schedHook is a webhook receiver on loopback that records every delivery.
type schedHook struct {
	*httptest.Server
	calls chan schedCall

	mu     sync.Mutex
	answer func(c schedCall) int // status to answer; 200 if nil
}

type schedCall struct {
	Method string
	Path   string
	Header http.Header
	Raw    []byte
	Body   map[string]any
}

func newSchedHook(t *testing.T) *schedHook {
	h := &schedHook{calls: make(chan schedCall, 10_000)}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := schedCall{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone()}
		c.Raw, _ = io.ReadAll(r.Body)
		json.Unmarshal(c.Raw, &c.Body)
		status := http.StatusOK
		h.mu.Lock()
		if h.answer != nil {
			status = h.answer(c)
		}
		h.mu.Unlock()
		h.calls <- c
		w.WriteHeader(status)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *schedHook) setAnswer(f func(c schedCall) int) {
	h.mu.Lock()
	h.answer = f
	h.mu.Unlock()
}

// next waits for the next delivery.
func (h *schedHook) next(t *testing.T) schedCall {
	t.Helper()
	select {
	case c := <-h.calls:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery within 10 s")
		return schedCall{}
	}
}

// none checks that no delivery arrives for a moment. It can only bound
// how long the test looks for something that must not happen.
func (h *schedHook) none(t *testing.T) {
	t.Helper()
	select {
	case c := <-h.calls:
		t.Fatalf("unexpected delivery: %s", c.Raw)
	case <-time.After(150 * time.Millisecond):
	}
}

func (c schedCall) num(t *testing.T, field string) int64 {
	t.Helper()
	v, ok := c.Body[field].(float64)
	if !ok {
		t.Fatalf("delivery field %q is %v, want a number; body %s", field, c.Body[field], c.Raw)
	}
	return int64(v)
}

// newSchedServer starts a gateway on a fake clock at schedT0 with the
// webhook "hook" pointing at h (and "other" at h too).
func newSchedServer(t *testing.T, h *schedHook, opts ...serverOption) *testServer {
	t.Helper()
	base := []serverOption{
		withFakeClock(durabletest.NewClock(schedT0)),
		withConfig(func(c *Config) {
			c.Webhooks = map[string]string{"hook": h.URL + "/hook", "other": h.URL + "/other"}
		}),
	}
	return newTestServer(t, append(base, opts...)...)
}

func schedEventPath(name, id string) string {
	return "/v1/schedulers/" + url.PathEscape(name) + "/events/" + url.PathEscape(id)
}

func schedListPath(name, query string) string {
	p := "/v1/schedulers/" + url.PathEscape(name) + "/events"
	if query != "" {
		p += "?" + query
	}
	return p
}

// schedWaitEvent polls GET of an event until cond holds for it (a nil JSON
// means 404).
func (s *testServer) schedWaitEvent(t *testing.T, name, id, what string, cond func(ev map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := s.do("GET", schedEventPath(name, id), nil)
		var ev map[string]any
		switch r.Status {
		case 200:
			ev = r.JSON
		case 404:
		default:
			t.Fatalf("GET event: %d %s", r.Status, r.Body)
		}
		if cond(ev) {
			return ev
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; last %s", what, r.Body)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func schedNum(ev map[string]any, field string) int64 {
	v, _ := ev[field].(float64)
	return int64(v)
}

var schedEventFields = []string{"id", "run_at_ms", "repeat_ms", "payload", "target", "state", "attempts", "last_fired_at_ms", "last_error"}

func checkEventShape(t *testing.T, ev map[string]any) {
	t.Helper()
	var keys []string
	for k := range ev {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	want := slices.Clone(schedEventFields)
	sort.Strings(want)
	if !slices.Equal(keys, want) {
		t.Fatalf("event fields %v, want %v", keys, want)
	}
}

func TestSchedulerPutGetDelete(t *testing.T) {
	h := newSchedHook(t)
	s := newSchedServer(t, h)
	p := schedEventPath("jobs", "e1")
	r := s.do("PUT", p, map[string]any{"run_at_ms": schedMS(time.Hour), "target": "hook", "payload": map[string]any{"a": []any{1, "b"}}}).expect(t, 200, "")
	checkEventShape(t, r.JSON)
	want := fmt.Sprintf(`{"id":"e1","run_at_ms":%d,"repeat_ms":null,"payload":{"a":[1,"b"]},"target":"hook","state":"scheduled","attempts":0,"last_fired_at_ms":null,"last_error":null}`, schedMS(time.Hour))
	if got := strings.TrimSpace(string(r.Body)); got != want {
		t.Fatalf("PUT answered\n%s\nwant\n%s", got, want)
	}
	g := s.do("GET", p, nil).expect(t, 200, "")
	if got := strings.TrimSpace(string(g.Body)); got != want {
		t.Fatalf("GET answered\n%s\nwant\n%s", got, want)
	}

	// Upsert: the second PUT replaces the event.
	r = s.do("PUT", p, map[string]any{"run_at_ms": schedMS(2 * time.Hour), "repeat_ms": 60000, "target": "other"}).expect(t, 200, "")
	want = fmt.Sprintf(`{"id":"e1","run_at_ms":%d,"repeat_ms":60000,"payload":null,"target":"other","state":"scheduled","attempts":0,"last_fired_at_ms":null,"last_error":null}`, schedMS(2*time.Hour))
	if got := strings.TrimSpace(string(r.Body)); got != want {
		t.Fatalf("upsert answered\n%s\nwant\n%s", got, want)
	}
	if got := strings.TrimSpace(string(s.do("GET", p, nil).expect(t, 200, "").Body)); got != want {
		t.Fatalf("GET after upsert\n%s\nwant\n%s", got, want)
	}
	l := s.do("GET", schedListPath("jobs", ""), nil).expect(t, 200, "")
	if evs := l.JSON["events"].([]any); len(evs) != 1 {
		t.Fatalf("list after upsert: %s", l.Body)
	}

	// An explicit null repeat_ms is a one-shot event.
	r = s.do("PUT", p, `{"run_at_ms": 5, "repeat_ms": null, "target": "hook", "payload": null}`).expect(t, 200, "")
	if r.JSON["repeat_ms"] != nil || r.JSON["payload"] != nil {
		t.Fatalf("null fields: %s", r.Body)
	}
	h.next(t) // run_at_ms 5 is long past: delivered at once

	q := schedEventPath("jobs", "e2")
	s.do("PUT", q, map[string]any{"run_at_ms": schedMS(time.Hour), "target": "hook"}).expect(t, 200, "")
	s.do("DELETE", q, nil).expect(t, 204, "")
	s.do("GET", q, nil).expect(t, 404, "not_found")
	s.do("DELETE", q, nil).expect(t, 404, "not_found")
	s.do("GET", schedEventPath("never-written", "x"), nil).expect(t, 404, "not_found")
	s.do("DELETE", schedEventPath("never-written", "x"), nil).expect(t, 404, "not_found")

	// A deleted event is never delivered.
	s.Clock.Advance(3 * time.Hour)
	h.none(t)
}

func TestSchedulerValidation(t *testing.T) {
	h := newSchedHook(t)
	s := newSchedServer(t, h)
	far := schedMS(time.Hour)
	payload := func(n int) string { // a JSON string of exactly n bytes
		return `"` + strings.Repeat("x", n-2) + `"`
	}
	for _, tc := range []struct {
		body   string
		status int
	}{
		{fmt.Sprintf(`{"run_at_ms": %d, "target": "hook"}`, far), 200},
		{`{"run_at_ms": 0, "target": "hook"}`, 200},
		{fmt.Sprintf(`{"run_at_ms": %d, "target": "hook"}`, int64(scheduler.MaxTime)), 200},
		{fmt.Sprintf(`{"run_at_ms": %d, "target": "hook"}`, int64(scheduler.MaxTime)+1), 400},
		{`{"run_at_ms": -1, "target": "hook"}`, 400},
		{`{"target": "hook"}`, 400},
		{`{"run_at_ms": null, "target": "hook"}`, 400},
		{`{"run_at_ms": "5", "target": "hook"}`, 400},
		{`{"run_at_ms": 1.5, "target": "hook"}`, 400},
		{`{"run_at_ms": 1e3, "target": "hook"}`, 400},
		{`{"run_at_ms": 99999999999999999999, "target": "hook"}`, 400},
		{fmt.Sprintf(`{"run_at_ms": %d, "repeat_ms": 1000, "target": "hook"}`, far), 200},
		{fmt.Sprintf(`{"run_at_ms": %d, "repeat_ms": 999, "target": "hook"}`, far), 400},
		{fmt.Sprintf(`{"run_at_ms": %d, "repeat_ms": 0, "target": "hook"}`, far), 400},
		{fmt.Sprintf(`{"run_at_ms": %d, "repeat_ms": -1000, "target": "hook"}`, far), 400},
		{fmt.Sprintf(`{"run_at_ms": %d, "repeat_ms": %d, "target": "hook"}`, far, int64(scheduler.MaxTime)), 200},
		{fmt.Sprintf(`{"run_at_ms": %d, "repeat_ms": %d, "target": "hook"}`, far, int64(scheduler.MaxTime)+1), 400},
		{fmt.Sprintf(`{"run_at_ms": %d, "repeat_ms": "1000", "target": "hook"}`, far), 400},
		{fmt.Sprintf(`{"run_at_ms": %d, "repeat_ms": 1500.5, "target": "hook"}`, far), 400},
		{fmt.Sprintf(`{"run_at_ms": %d, "payload": %s, "target": "hook"}`, far, payload(scheduler.MaxPayload)), 200},
		{fmt.Sprintf(`{"run_at_ms": %d, "payload": %s, "target": "hook"}`, far, payload(scheduler.MaxPayload+1)), 400},
		{fmt.Sprintf(`{"run_at_ms": %d, "payload": [1, {"a": null}, "x", true], "target": "hook"}`, far), 200},
		{fmt.Sprintf(`{"run_at_ms": %d, "payload": 3.25, "target": "hook"}`, far), 200},
		{fmt.Sprintf(`{"run_at_ms": %d}`, far), 400},
		{fmt.Sprintf(`{"run_at_ms": %d, "target": null}`, far), 400},
		{fmt.Sprintf(`{"run_at_ms": %d, "target": 5}`, far), 400},
		{fmt.Sprintf(`{"run_at_ms": %d, "target": "nope"}`, far), 400},
		{fmt.Sprintf(`{"run_at_ms": %d, "target": ""}`, far), 400},
		{fmt.Sprintf(`{"run_at_ms": %d, "target": "HOOK"}`, far), 400},
		{fmt.Sprintf(`{"run_at_ms": %d, "target": "hook", "extra": 1}`, far), 400},
		{fmt.Sprintf(`{"run_at_ms": %d, "target": "hook", "runAt": 1}`, far), 400},
		{fmt.Sprintf(`{"run_at_ms": %d, "target": "hook"} {}`, far), 400},
		{fmt.Sprintf(`{"run_at_ms": %d, "target": "hook"`, far), 400},
		{`[1]`, 400},
		{`null`, 400},
		{``, 400},
		{`{}`, 400},
	} {
		r := s.do("PUT", schedEventPath("v", "e"), tc.body)
		if r.Status != tc.status {
			t.Errorf("PUT %.80s: status %d, want %d; body %s", tc.body, r.Status, tc.status, r.Body)
			continue
		}
		if tc.status == 400 {
			r.expect(t, 400, "invalid_argument")
		}
	}

	// Over the whole-body limit: 413, not 400.
	big := fmt.Sprintf(`{"run_at_ms": %d, "target": "hook", "payload": %s}`, far, payload(DefaultMaxBody))
	s.do("PUT", schedEventPath("v", "e"), big).expect(t, 413, "payload_too_large")

	// Path parameters, on every route.
	ok256, bad257 := strings.Repeat("n", 256), strings.Repeat("n", 257)
	body := map[string]any{"run_at_ms": far, "target": "hook"}
	s.do("PUT", schedEventPath(ok256, ok256), body).expect(t, 200, "")
	s.do("GET", schedEventPath(ok256, ok256), nil).expect(t, 200, "")
	s.do("GET", schedListPath(ok256, ""), nil).expect(t, 200, "")
	for _, p := range []string{
		schedEventPath(bad257, "e"), schedEventPath("n", bad257),
		"/v1/schedulers/a%00b/events/e", "/v1/schedulers/n/events/a%0Ab", "/v1/schedulers/n/events/%FF",
		"/v1/schedulers/%C2%85/events/e",
	} {
		s.do("PUT", p, body).expect(t, 400, "invalid_argument")
		s.do("GET", p, nil).expect(t, 400, "invalid_argument")
		s.do("DELETE", p, nil).expect(t, 400, "invalid_argument")
	}
	s.do("GET", schedListPath(bad257, ""), nil).expect(t, 400, "invalid_argument")
	s.do("GET", "/v1/schedulers/a%7Fb/events", nil).expect(t, 400, "invalid_argument")

	// Wrong methods.
	for _, m := range []string{"POST", "PATCH"} {
		r := s.do(m, schedEventPath("v", "e"), body).expect(t, 405, "method_not_allowed")
		if a := r.Header.Get("Allow"); !strings.Contains(a, "GET") || !strings.Contains(a, "PUT") || !strings.Contains(a, "DELETE") {
			t.Fatalf("Allow %q", a)
		}
	}
	for _, m := range []string{"POST", "PUT", "DELETE"} {
		r := s.do(m, schedListPath("v", ""), nil).expect(t, 405, "method_not_allowed")
		if a := r.Header.Get("Allow"); !strings.Contains(a, "GET") {
			t.Fatalf("Allow %q", a)
		}
	}
}

func TestSchedulerDeliveryRequest(t *testing.T) {
	h := newSchedHook(t)
	s := newSchedServer(t, h)
	name, id := "team a:b/c é", "ev:1/x ü~._-"
	runAt := schedMS(10 * time.Second)
	s.do("PUT", schedEventPath(name, id), map[string]any{"run_at_ms": runAt, "target": "hook", "payload": map[string]any{"k": []any{1, "two"}}}).expect(t, 200, "")

	// Never before run_at_ms.
	schedAwaitTimer(t, s.Clock, schedT0.Add(10*time.Second))
	s.Clock.Set(schedT0.Add(10*time.Second - time.Millisecond))
	h.none(t)
	s.Clock.Set(schedT0.Add(10 * time.Second))
	c := h.next(t)
	if c.Method != "POST" || c.Path != "/hook" {
		t.Fatalf("delivery %s %s", c.Method, c.Path)
	}
	if ct := c.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	wantKey := "team%20a%3Ab%2Fc%20%C3%A9:ev%3A1%2Fx%20%C3%BC~._-:" + strconv.FormatInt(runAt, 10)
	if got := c.Header.Get("Idempotency-Key"); got != wantKey {
		t.Fatalf("Idempotency-Key %q, want %q", got, wantKey)
	}
	var body map[string]json.RawMessage
	if err := json.Unmarshal(c.Raw, &body); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"scheduler":   `"team a:b/c é"`,
		"id":          `"ev:1/x ü~._-"`,
		"run_at_ms":   strconv.FormatInt(runAt, 10),
		"fired_at_ms": strconv.FormatInt(runAt, 10),
		"attempt":     "1",
		"payload":     `{"k":[1,"two"]}`,
	}
	if len(body) != len(want) {
		t.Fatalf("delivery body %s, want exactly the fields %v", c.Raw, want)
	}
	for k, v := range want {
		if string(body[k]) != v {
			t.Fatalf("delivery field %s = %s, want %s (body %s)", k, body[k], v, c.Raw)
		}
	}

	// Delivered: a one-shot event is deleted, and not delivered again.
	s.schedWaitEvent(t, name, id, "the delivered event to be deleted", func(ev map[string]any) bool { return ev == nil })
	s.Clock.Advance(time.Hour)
	h.none(t)
}

func TestSchedulerRepeatingEvent(t *testing.T) {
	h := newSchedHook(t)
	s := newSchedServer(t, h)
	const period = 10 * time.Second
	s.do("PUT", schedEventPath("rep", "tick"), map[string]any{"run_at_ms": schedMS(period), "repeat_ms": period.Milliseconds(), "target": "hook", "payload": "p"}).expect(t, 200, "")
	for k := 1; k <= 4; k++ {
		slot := schedT0.Add(time.Duration(k) * period)
		schedAwaitTimer(t, s.Clock, slot)
		s.Clock.Set(slot.Add(-time.Millisecond))
		h.none(t)
		s.Clock.Set(slot)
		c := h.next(t)
		if c.num(t, "run_at_ms") != slot.UnixMilli() || c.num(t, "attempt") != 1 || c.Body["payload"] != "p" {
			t.Fatalf("delivery %d: %s", k, c.Raw)
		}
		ev := s.schedWaitEvent(t, "rep", "tick", "the next slot", func(ev map[string]any) bool {
			return ev != nil && schedNum(ev, "run_at_ms") == slot.Add(period).UnixMilli()
		})
		if ev["state"] != "scheduled" || schedNum(ev, "attempts") != 0 || schedNum(ev, "last_fired_at_ms") != slot.UnixMilli() || schedNum(ev, "repeat_ms") != period.Milliseconds() {
			t.Fatalf("after delivery %d: %v", k, ev)
		}
	}

	// A failed delivery is retried for the same slot; once it succeeds the
	// event moves on and attempts are back to 0.
	slot := schedT0.Add(5 * period)
	fail := true
	h.setAnswer(func(schedCall) int {
		if fail {
			fail = false
			return 503
		}
		return 200
	})
	schedAwaitTimer(t, s.Clock, slot)
	s.Clock.Set(slot)
	c := h.next(t)
	ev := s.schedWaitEvent(t, "rep", "tick", "the failure", func(ev map[string]any) bool { return schedNum(ev, "attempts") == 1 })
	if schedNum(ev, "run_at_ms") != slot.UnixMilli() || ev["last_error"] == nil || ev["state"] != "scheduled" {
		t.Fatalf("after a failure: %v", ev)
	}
	schedAwaitRetryTimer(t, s.Clock)
	s.Clock.Set(slot.Add(schedRetryUpper(1)))
	c2 := h.next(t)
	if c2.num(t, "run_at_ms") != slot.UnixMilli() || c2.num(t, "attempt") != 2 || c2.Header.Get("Idempotency-Key") != c.Header.Get("Idempotency-Key") {
		t.Fatalf("retry %s (key %q), first %s", c2.Raw, c2.Header.Get("Idempotency-Key"), c.Raw)
	}
	ev = s.schedWaitEvent(t, "rep", "tick", "the retry to succeed", func(ev map[string]any) bool {
		return schedNum(ev, "run_at_ms") == slot.Add(period).UnixMilli()
	})
	if schedNum(ev, "attempts") != 0 {
		t.Fatalf("attempts not reset: %v", ev)
	}
	schedAwaitTimer(t, s.Clock, slot.Add(period))
	s.Clock.Set(slot.Add(period))
	if c := h.next(t); c.num(t, "run_at_ms") != slot.Add(period).UnixMilli() {
		t.Fatalf("next slot: %s", c.Raw)
	}
}

// schedRetryUpper is the latest a retry after the failed attempt n may come.
func schedRetryUpper(n int) time.Duration {
	d := min(scheduler.RetryInitial<<(n-1), scheduler.RetryMax)
	return d + d/4
}

func TestSchedulerRetriesWithBackoffThenFails(t *testing.T) {
	h := newSchedHook(t)
	h.setAnswer(func(schedCall) int { return 500 })
	s := newSchedServer(t, h)
	runAt := schedT0.Add(time.Second)
	s.do("PUT", schedEventPath("f", "e"), map[string]any{"run_at_ms": runAt.UnixMilli(), "target": "hook"}).expect(t, 200, "")
	schedAwaitTimer(t, s.Clock, runAt)
	s.Clock.Set(runAt)
	first := h.next(t)
	key := first.Header.Get("Idempotency-Key")
	for n := 1; n <= scheduler.MaxAttempts; n++ {
		ev := s.schedWaitEvent(t, "f", "e", fmt.Sprintf("failure %d to be recorded", n), func(ev map[string]any) bool {
			return schedNum(ev, "attempts") == int64(n)
		})
		failedAt := s.Clock.Now()
		if schedNum(ev, "last_fired_at_ms") != failedAt.UnixMilli() || !strings.Contains(fmt.Sprint(ev["last_error"]), "500") ||
			schedNum(ev, "run_at_ms") != runAt.UnixMilli() {
			t.Fatalf("after failure %d: %v", n, ev)
		}
		if n == scheduler.MaxAttempts {
			if ev["state"] != "failed" {
				t.Fatalf("after %d failures: state %v", n, ev["state"])
			}
			break
		}
		if ev["state"] != "scheduled" {
			t.Fatalf("after failure %d: state %v", n, ev["state"])
		}
		// The retry comes after 2^(n-1) s, plus at most 25 %.
		base := scheduler.RetryInitial << (n - 1)
		schedAwaitRetryTimer(t, s.Clock)
		s.Clock.Set(failedAt.Add(base - time.Millisecond))
		h.none(t)
		s.Clock.Set(failedAt.Add(schedRetryUpper(n)))
		c := h.next(t)
		if c.num(t, "attempt") != int64(n+1) || c.num(t, "run_at_ms") != runAt.UnixMilli() || c.Header.Get("Idempotency-Key") != key {
			t.Fatalf("retry %d: %s key %q", n, c.Raw, c.Header.Get("Idempotency-Key"))
		}
	}
	// Failed: never delivered again, and listed as failed.
	s.Clock.Advance(24 * time.Hour)
	h.none(t)
	l := s.do("GET", schedListPath("f", ""), nil).expect(t, 200, "")
	evs := l.JSON["events"].([]any)
	if len(evs) != 1 || evs[0].(map[string]any)["state"] != "failed" {
		t.Fatalf("list: %s", l.Body)
	}
	// A PUT revives it.
	s.do("PUT", schedEventPath("f", "e"), map[string]any{"run_at_ms": s.Clock.Now().UnixMilli(), "target": "hook"}).expect(t, 200, "")
	if c := h.next(t); c.num(t, "attempt") != 1 {
		t.Fatalf("revived: %s", c.Raw)
	}
}

func TestSchedulerCatchUpAfterDowntime(t *testing.T) {
	h := newSchedHook(t)
	s := newSchedServer(t, h)
	const period = 10 * time.Second
	s.do("PUT", schedEventPath("cu", "r"), map[string]any{"run_at_ms": schedMS(period), "repeat_ms": period.Milliseconds(), "target": "hook"}).expect(t, 200, "")
	dir := s.Dir
	s.Close()

	// Down for 5.5 periods: slots at 10..50 s passed.
	clock := durabletest.NewClock(schedT0.Add(55 * time.Second))
	s2 := newSchedServer(t, h, withFakeClock(clock), withRuntime(func(rt *durable.Runtime) { rt.Dir = dir }))
	c := h.next(t)
	if c.num(t, "run_at_ms") != schedMS(50*time.Second) || c.num(t, "fired_at_ms") != schedMS(55*time.Second) || c.num(t, "attempt") != 1 {
		t.Fatalf("catch-up delivery %s", c.Raw)
	}
	if c.Body["scheduler"] != "cu" {
		t.Fatalf("scheduler name after restart: %s", c.Raw)
	}
	s2.schedWaitEvent(t, "cu", "r", "the first future slot", func(ev map[string]any) bool {
		return schedNum(ev, "run_at_ms") == schedMS(60*time.Second)
	})
	h.none(t) // one catch-up delivery, not a burst
	schedAwaitTimer(t, clock, schedT0.Add(60*time.Second))
	clock.Set(schedT0.Add(60 * time.Second))
	if c := h.next(t); c.num(t, "run_at_ms") != schedMS(60*time.Second) {
		t.Fatalf("next slot: %s", c.Raw)
	}
	h.none(t)
}

func TestSchedulerEventsSurviveRestart(t *testing.T) {
	h := newSchedHook(t)
	s := newSchedServer(t, h)
	due := map[string]any{"run_at_ms": schedMS(30 * time.Second), "target": "hook", "payload": []any{"due"}}
	later := map[string]any{"run_at_ms": schedMS(time.Hour), "repeat_ms": 60000, "target": "other", "payload": map[string]any{"x": 1}}
	s.do("PUT", schedEventPath("sv", "due"), due).expect(t, 200, "")
	before := s.do("PUT", schedEventPath("sv", "later"), later).expect(t, 200, "")
	dir := s.Dir
	s.Close()

	clock := durabletest.NewClock(schedT0.Add(time.Minute))
	s2 := newSchedServer(t, h, withFakeClock(clock), withRuntime(func(rt *durable.Runtime) { rt.Dir = dir }))
	c := h.next(t) // came due while the server was down: fires at start
	if c.Body["id"] != "due" || c.Body["scheduler"] != "sv" || c.num(t, "run_at_ms") != schedMS(30*time.Second) || c.num(t, "fired_at_ms") != schedMS(time.Minute) {
		t.Fatalf("delivery at start: %s", c.Raw)
	}
	s2.schedWaitEvent(t, "sv", "due", "the delivered event to go", func(ev map[string]any) bool { return ev == nil })
	after := s2.do("GET", schedEventPath("sv", "later"), nil).expect(t, 200, "")
	if string(after.Body) != string(before.Body) {
		t.Fatalf("after restart %s, before %s", after.Body, before.Body)
	}
	h.none(t)
	schedAwaitTimer(t, clock, schedT0.Add(time.Hour))
	clock.Set(schedT0.Add(time.Hour))
	if c := h.next(t); c.Body["id"] != "later" || c.Path != "/other" {
		t.Fatalf("later event: %s %s", c.Path, c.Raw)
	}
}

func TestSchedulerManyEvents(t *testing.T) {
	h := newSchedHook(t)
	s := newSchedServer(t, h)
	const n = 500
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			// Event i is due at (i+1) s; puts arrive in any order.
			r := s.do("PUT", schedEventPath("many", fmt.Sprintf("e%03d", i)), map[string]any{"run_at_ms": schedMS(time.Duration(i+1) * time.Second), "target": "hook"})
			if r.Status != 200 {
				t.Errorf("PUT e%03d: %d %s", i, r.Status, r.Body)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	h.none(t)
	got := map[string]int{}
	collect := func(count int) {
		for range count {
			c := h.next(t)
			id := c.Body["id"].(string)
			got[id]++
			var i int
			fmt.Sscanf(id, "e%d", &i)
			if c.num(t, "run_at_ms") != schedMS(time.Duration(i+1)*time.Second) || c.num(t, "fired_at_ms") > s.Clock.Now().UnixMilli() {
				t.Fatalf("delivery %s", c.Raw)
			}
		}
	}
	// Half of them come due: exactly those are delivered.
	schedAwaitTimer(t, s.Clock, schedT0.Add(time.Second))
	s.Clock.Set(schedT0.Add(250 * time.Second))
	collect(250)
	h.none(t)
	for id, k := range got {
		var i int
		fmt.Sscanf(id, "e%d", &i)
		if i >= 250 || k != 1 {
			t.Fatalf("%s delivered %d times (due at %d s)", id, k, i+1)
		}
	}
	l := s.do("GET", schedListPath("many", "limit=1000"), nil).expect(t, 200, "")
	if evs := l.JSON["events"].([]any); len(evs) != 250 {
		t.Fatalf("%d events left, want 250", len(evs))
	}
	schedAwaitTimer(t, s.Clock, schedT0.Add(251*time.Second))
	s.Clock.Set(schedT0.Add(n * time.Second))
	collect(250)
	h.none(t)
	if len(got) != n {
		t.Fatalf("%d distinct events delivered, want %d", len(got), n)
	}
	for id, k := range got {
		if k != 1 {
			t.Fatalf("%s delivered %d times", id, k)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		l := s.do("GET", schedListPath("many", ""), nil).expect(t, 200, "")
		if len(l.JSON["events"].([]any)) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("events left after delivery: %s", l.Body)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSchedulerList(t *testing.T) {
	h := newSchedHook(t)
	s := newSchedServer(t, h)

	// Never written: an empty page.
	r := s.do("GET", schedListPath("empty", ""), nil).expect(t, 200, "")
	if strings.TrimSpace(string(r.Body)) != `{"events":[],"next_cursor":null}` {
		t.Fatalf("empty list: %s", r.Body)
	}

	// 25 events, five per run_at_ms, ids out of order: listed by run_at_ms,
	// then id bytewise.
	type key struct {
		runAt int64
		id    string
	}
	var want []key
	ids := []string{"b", "a", "B", "é", "a0", "z", "_", "~", "0", "aa"}
	for i := range 25 {
		k := key{schedMS(time.Hour + time.Duration(4-i%5)*time.Second), ids[i%len(ids)] + strconv.Itoa(i/len(ids))}
		want = append(want, k)
		s.do("PUT", schedEventPath("ls", k.id), map[string]any{"run_at_ms": k.runAt, "target": "hook"}).expect(t, 200, "")
	}
	slices.SortFunc(want, func(a, b key) int {
		if a.runAt != b.runAt {
			return int(a.runAt - b.runAt)
		}
		return strings.Compare(a.id, b.id)
	})
	var got []key
	cursor := ""
	pages := 0
	for {
		q := "limit=7"
		if cursor != "" {
			q += "&cursor=" + url.QueryEscape(cursor)
		}
		r := s.do("GET", schedListPath("ls", q), nil).expect(t, 200, "")
		evs := r.JSON["events"].([]any)
		pages++
		for _, e := range evs {
			ev := e.(map[string]any)
			checkEventShape(t, ev)
			got = append(got, key{schedNum(ev, "run_at_ms"), ev["id"].(string)})
		}
		if r.JSON["next_cursor"] == nil {
			if len(evs) != 4 {
				t.Fatalf("last page has %d events", len(evs))
			}
			break
		}
		if len(evs) != 7 {
			t.Fatalf("page %d has %d events", pages, len(evs))
		}
		cursor = r.str(t, "next_cursor")
		if pages > 10 {
			t.Fatal("pagination does not end")
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("listed\n%v\nwant\n%v", got, want)
	}

	// A page that ends exactly at the last event has no next_cursor.
	r = s.do("GET", schedListPath("ls", "limit=25"), nil).expect(t, 200, "")
	if len(r.JSON["events"].([]any)) != 25 || r.JSON["next_cursor"] != nil {
		t.Fatalf("full page: %s", r.Body)
	}
	r = s.do("GET", schedListPath("ls", "limit=24"), nil).expect(t, 200, "")
	if len(r.JSON["events"].([]any)) != 24 || r.JSON["next_cursor"] == nil {
		t.Fatalf("page before the last: %s", r.Body)
	}
	last := s.do("GET", schedListPath("ls", "limit=5&cursor="+url.QueryEscape(r.str(t, "next_cursor"))), nil).expect(t, 200, "")
	if evs := last.JSON["events"].([]any); len(evs) != 1 || last.JSON["next_cursor"] != nil {
		t.Fatalf("last page: %s", last.Body)
	}

	// Limits.
	for _, q := range []string{"limit=1", "limit=1000", "limit=500"} {
		s.do("GET", schedListPath("ls", q), nil).expect(t, 200, "")
	}
	if r := s.do("GET", schedListPath("ls", "limit=1"), nil); len(r.JSON["events"].([]any)) != 1 || r.JSON["next_cursor"] == nil {
		t.Fatalf("limit=1: %s", r.Body)
	}
	for _, q := range []string{"limit=0", "limit=1001", "limit=-1", "limit=abc", "limit=", "limit=1.5", "limit=5&limit=6", "limit=%zz", "limit=99999999999999999999"} {
		s.do("GET", schedListPath("ls", q), nil).expect(t, 400, "invalid_argument")
	}

	// Default limit: 100.
	for i := range 130 {
		s.do("PUT", schedEventPath("big", fmt.Sprintf("e%03d", i)), map[string]any{"run_at_ms": schedMS(time.Hour), "target": "hook"}).expect(t, 200, "")
	}
	r = s.do("GET", schedListPath("big", ""), nil).expect(t, 200, "")
	if len(r.JSON["events"].([]any)) != 100 || r.JSON["next_cursor"] == nil {
		t.Fatalf("default page: %d events, next %v", len(r.JSON["events"].([]any)), r.JSON["next_cursor"])
	}
	bigCursor := r.str(t, "next_cursor")
	r = s.do("GET", schedListPath("big", "cursor="+url.QueryEscape(bigCursor)), nil).expect(t, 200, "")
	if evs := r.JSON["events"].([]any); len(evs) != 30 || evs[0].(map[string]any)["id"] != "e100" || r.JSON["next_cursor"] != nil {
		t.Fatalf("second default page: %s", r.Body)
	}

	// Cursors the server did not make.
	tampered := []byte(bigCursor)
	tampered[len(tampered)/2] ^= 1
	for _, c := range []string{"abc", "not a cursor", string(tampered), bigCursor + "A", bigCursor[:len(bigCursor)-1], strings.Repeat("A", 40)} {
		s.do("GET", schedListPath("big", "cursor="+url.QueryEscape(c)), nil).expect(t, 400, "invalid_argument")
	}
	// Another scheduler's cursor, and any cursor for a scheduler never written.
	s.do("GET", schedListPath("ls", "cursor="+url.QueryEscape(bigCursor)), nil).expect(t, 400, "invalid_argument")
	s.do("GET", schedListPath("empty", "cursor="+url.QueryEscape(bigCursor)), nil).expect(t, 400, "invalid_argument")

	// A cursor stays valid when its event is deleted, and across a restart.
	s.do("DELETE", schedEventPath("big", "e099"), nil).expect(t, 204, "")
	dir := s.Dir
	s.Close()
	s2 := newSchedServer(t, h, withRuntime(func(rt *durable.Runtime) { rt.Dir = dir }))
	r = s2.do("GET", schedListPath("big", "cursor="+url.QueryEscape(bigCursor)), nil).expect(t, 200, "")
	if evs := r.JSON["events"].([]any); len(evs) != 30 || evs[0].(map[string]any)["id"] != "e100" {
		t.Fatalf("after restart: %s", r.Body)
	}
}
