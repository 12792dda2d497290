package gateway

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/durableobjects/durable"
	"github.com/durableobjects/durable/durabletest"
	"github.com/durableobjects/durable/patterns/ratelimit"
)

var rlStart = time.UnixMilli(1_800_000_000_000)

// rlServer is a test server on a fake clock starting at rlStart.
func rlServer(t *testing.T, opts ...serverOption) *testServer {
	return newTestServer(t, append([]serverOption{withFakeClock(durabletest.NewClock(rlStart))}, opts...)...)
}

// rlAt moves the server's clock to rlStart + ms.
func rlAt(s *testServer, ms int64) { s.Clock.Set(rlStart.Add(time.Duration(ms) * time.Millisecond)) }

func rlCheck(s *testServer, key string, body any) *response {
	return s.do("POST", "/v1/ratelimit/"+key+"/check", body)
}

// expectAllowed checks a 200 answer field by field, and that it has no others.
func expectAllowed(t *testing.T, r *response, remaining, reset int64) {
	t.Helper()
	r.expect(t, http.StatusOK, "")
	if got, want := jsonKeys(r.JSON), []string{"allowed", "remaining", "reset_ms"}; !slices.Equal(got, want) {
		t.Fatalf("fields %v, want %v; body %s", got, want, r.Body)
	}
	if r.JSON["allowed"] != true || r.num(t, "remaining") != remaining || r.num(t, "reset_ms") != reset {
		t.Fatalf("body %s, want allowed, remaining %d, reset_ms %d", r.Body, remaining, reset)
	}
	if r.Header.Get("Retry-After") != "" {
		t.Fatalf("Retry-After %q on an allowed check", r.Header.Get("Retry-After"))
	}
}

// expectDenied checks a 429 answer exactly as api.md shapes it.
func expectDenied(t *testing.T, r *response, retry int64) {
	t.Helper()
	r.expect(t, http.StatusTooManyRequests, "rate_limited")
	if got, want := jsonKeys(r.JSON), []string{"allowed", "error", "remaining", "retry_after_ms"}; !slices.Equal(got, want) {
		t.Fatalf("fields %v, want %v; body %s", got, want, r.Body)
	}
	if r.JSON["allowed"] != false || r.num(t, "remaining") != 0 || r.num(t, "retry_after_ms") != retry {
		t.Fatalf("body %s, want denied, remaining 0, retry_after_ms %d", r.Body, retry)
	}
	e, _ := r.JSON["error"].(map[string]any)
	if got := jsonKeys(e); !slices.Equal(got, []string{"code", "message"}) {
		t.Fatalf("error fields %v; body %s", got, r.Body)
	}
	if msg, _ := e["message"].(string); msg == "" {
		t.Fatalf("empty error message; body %s", r.Body)
	}
	if got, want := r.Header.Get("Retry-After"), fmt.Sprint((retry+999)/1000); got != want {
		t.Fatalf("Retry-After %q, want %q (retry_after_ms %d)", got, want, retry)
	}
}

func jsonKeys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// rlStats reads a key's storage through the limiter's Stats method.
func rlStats(t *testing.T, s *testServer, key string) ratelimit.Stats {
	t.Helper()
	ns, ok := s.RT.Namespace(ratelimit.ClassName)
	if !ok {
		t.Fatal("ratelimit class not registered")
	}
	st, err := durable.Call[ratelimit.Stats](context.Background(), ns.GetByName(key), "Stats", nil)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// waitRL polls key's stats until ok accepts them.
func waitRL(t *testing.T, s *testServer, key, what string, ok func(ratelimit.Stats) bool) ratelimit.Stats {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := rlStats(t, s, key)
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: gave up waiting; stats %+v", what, st)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRateLimitSlidingLogWindowSlides(t *testing.T) {
	s := rlServer(t)
	body := map[string]any{"limit": 3, "window_ms": 1500}
	expectAllowed(t, rlCheck(s, "k", body), 2, 1500)
	rlAt(s, 100)
	expectAllowed(t, rlCheck(s, "k", body), 1, 1500)
	rlAt(s, 200)
	expectAllowed(t, rlCheck(s, "k", body), 0, 1500)
	rlAt(s, 300)
	expectDenied(t, rlCheck(s, "k", body), 1200) // the entry at 0 leaves (now-1500, now] at 1500
	rlAt(s, 1499)
	expectDenied(t, rlCheck(s, "k", body), 1) // Retry-After: 1
	rlAt(s, 1500)
	expectAllowed(t, rlCheck(s, "k", body), 0, 1500)
	expectDenied(t, rlCheck(s, "k", body), 100)
	// Denied requests were not counted: at 1600 the entry at 100 leaves.
	rlAt(s, 1600)
	expectAllowed(t, rlCheck(s, "k", body), 0, 1500)
	// Another key is another object.
	expectAllowed(t, rlCheck(s, "other", body), 2, 1500)
}

func TestRateLimitCostsAndDefaults(t *testing.T) {
	s := rlServer(t)
	expectAllowed(t, rlCheck(s, "k", `{"limit": 10, "window_ms": 1000, "cost": 4}`), 6, 1000)
	expectAllowed(t, rlCheck(s, "k", `{"limit": 10, "window_ms": 1000, "algorithm": "sliding_log"}`), 5, 1000)
	expectAllowed(t, rlCheck(s, "k", `{"limit": 10, "window_ms": 1000}`), 4, 1000) // cost 1, sliding_log
	expectDenied(t, rlCheck(s, "k", `{"limit": 10, "window_ms": 1000, "cost": 5}`), 1000)
	expectAllowed(t, rlCheck(s, "k", `{"limit": 10, "window_ms": 1000, "cost": 4}`), 0, 1000)
	// Each check applies its own limit and window to the same history.
	expectAllowed(t, rlCheck(s, "k", `{"limit": 12, "window_ms": 1000, "cost": 2}`), 0, 1000)
	expectDenied(t, rlCheck(s, "k", `{"limit": 12, "window_ms": 1000, "cost": 1}`), 1000)
	rlAt(s, 500)
	expectAllowed(t, rlCheck(s, "k", `{"limit": 10, "window_ms": 400}`), 9, 400)
}

func TestRateLimitTokenBucket(t *testing.T) {
	s := rlServer(t)
	tb := func(limit, window, cost int) string {
		return fmt.Sprintf(`{"limit": %d, "window_ms": %d, "cost": %d, "algorithm": "token_bucket"}`, limit, window, cost)
	}
	// 3 tokens per second: one every 333⅓ ms, a burst of 3.
	expectAllowed(t, rlCheck(s, "tb", tb(3, 1000, 1)), 2, 334) // full again at 333⅓
	expectAllowed(t, rlCheck(s, "tb", tb(3, 1000, 2)), 0, 1000)
	expectDenied(t, rlCheck(s, "tb", tb(3, 1000, 1)), 334) // one token back at 333⅓
	expectDenied(t, rlCheck(s, "tb", tb(3, 1000, 3)), 1000)
	rlAt(s, 333)
	expectDenied(t, rlCheck(s, "tb", tb(3, 1000, 1)), 1)
	rlAt(s, 334)
	expectAllowed(t, rlCheck(s, "tb", tb(3, 1000, 1)), 0, 1000) // full at 1333⅓: in 999⅓
	rlAt(s, 1000)
	expectAllowed(t, rlCheck(s, "tb", tb(3, 1000, 1)), 1, 667) // 2 back, 1 taken: TAT 1666⅔
	rlAt(s, 10_000)
	expectAllowed(t, rlCheck(s, "tb", tb(3, 1000, 3)), 0, 1000)
}

// api.md: with limit L and N > L simultaneous requests, exactly L are allowed.
func TestRateLimitExactUnderConcurrency(t *testing.T) {
	for _, algo := range []string{"sliding_log", "token_bucket"} {
		t.Run(algo, func(t *testing.T) {
			s := rlServer(t)
			body := fmt.Sprintf(`{"limit": 50, "window_ms": 60000, "algorithm": %q}`, algo)
			var mu sync.Mutex
			statuses := map[int]int{}
			var wg sync.WaitGroup
			start := make(chan struct{})
			client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 200}}
			defer client.CloseIdleConnections()
			for range 200 {
				wg.Go(func() {
					<-start
					resp, err := client.Post(s.URL+"/v1/ratelimit/hot/check", "application/json", strings.NewReader(body))
					if err != nil {
						t.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					mu.Lock()
					statuses[resp.StatusCode]++
					mu.Unlock()
				})
			}
			close(start)
			wg.Wait()
			if statuses[200] != 50 || statuses[429] != 150 {
				t.Fatalf("statuses %v, want 50 × 200 and 150 × 429", statuses)
			}
			// And nothing more once the burst is over.
			expectDenied(t, rlCheck(s, "hot", body), map[string]int64{"sliding_log": 60_000, "token_bucket": 1200}[algo])
		})
	}
}

// api.md: counts survive a restart.
func TestRateLimitSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	s := rlServer(t, withRuntime(func(rt *durable.Runtime) { rt.Dir = dir }))
	expectAllowed(t, rlCheck(s, "k", `{"limit": 2, "window_ms": 60000}`), 1, 60_000)
	rlAt(s, 1000)
	expectAllowed(t, rlCheck(s, "k", `{"limit": 2, "window_ms": 60000}`), 0, 60_000)
	expectAllowed(t, rlCheck(s, "k", `{"limit": 2, "window_ms": 60000, "algorithm": "token_bucket", "cost": 2}`), 0, 60_000)
	s.Close()

	clock := durabletest.NewClock(rlStart.Add(2 * time.Second))
	s2 := newTestServer(t, withFakeClock(clock), withRuntime(func(rt *durable.Runtime) { rt.Dir = dir }))
	expectDenied(t, rlCheck(s2, "k", `{"limit": 2, "window_ms": 60000}`), 58_000)
	// TAT 61000; one more token needs now >= 61000 + 30000 - 60000.
	expectDenied(t, rlCheck(s2, "k", `{"limit": 2, "window_ms": 60000, "algorithm": "token_bucket"}`), 29_000)
	clock.Set(rlStart.Add(60 * time.Second))
	expectAllowed(t, rlCheck(s2, "k", `{"limit": 2, "window_ms": 60000}`), 0, 60_000)
}

// api.md: entries older than the window are deleted by an alarm, so an
// idle key's storage returns to ~0.
func TestRateLimitIdleKeyIsCleanedUp(t *testing.T) {
	s := rlServer(t)
	for i := range 5 {
		rlAt(s, int64(i)*100)
		rlCheck(s, "idle", `{"limit": 100, "window_ms": 10000}`).expect(t, 200, "")
		rlCheck(s, "idle", `{"limit": 100, "window_ms": 10000, "algorithm": "token_bucket"}`).expect(t, 200, "")
	}
	// One alarm, for the earliest need: the first entry leaves the window
	// at +10000 (the bucket, full at +500, goes after a window, at +10500).
	st := rlStats(t, s, "idle")
	if st.Entries != 5 || !st.Bucket || st.AlarmAtMS != rlStart.UnixMilli()+10_000 {
		t.Fatalf("stats %+v: want 5 entries, a bucket, and one alarm at +10000", st)
	}
	rlAt(s, 10_000) // the first entry goes
	waitRL(t, s, "idle", "first entry deleted", func(st ratelimit.Stats) bool {
		return st.Bucket && st.Entries == 4 && st.AlarmAtMS == rlStart.UnixMilli()+11_000
	})
	rlAt(s, 20_000)
	st = waitRL(t, s, "idle", "log emptied", func(st ratelimit.Stats) bool { return st.Entries == 0 && st.AlarmAtMS == 0 })
	if st.RetentionMS != 0 || st.Bucket || st.LogCost != 0 {
		t.Fatalf("idle key still holds state: %+v", st)
	}
	expectAllowed(t, rlCheck(s, "idle", `{"limit": 100, "window_ms": 10000}`), 99, 10_000)
}

func TestRateLimitValidation(t *testing.T) {
	s := rlServer(t)
	for _, body := range []string{
		``, `{}`, `null`, `[]`, `"x"`, `{"limit": 5}`, `{"window_ms": 5}`,
		`{"limit": null, "window_ms": 5}`,
		`{"limit": 0, "window_ms": 5}`,
		`{"limit": -1, "window_ms": 5}`,
		`{"limit": 1000000001, "window_ms": 5}`,
		`{"limit": 99999999999999999999, "window_ms": 5}`,
		`{"limit": 5, "window_ms": 0}`,
		`{"limit": 5, "window_ms": 2592000001}`,
		`{"limit": 5, "window_ms": 5, "cost": 0}`,
		`{"limit": 5, "window_ms": 5, "cost": 6}`,
		`{"limit": 5, "window_ms": 5, "cost": -1}`,
		`{"limit": 5, "window_ms": 5, "algorithm": "fixed_window"}`,
		`{"limit": 5, "window_ms": 5, "algorithm": "Sliding_Log"}`,
		`{"limit": 5, "window_ms": 5, "algorithm": ""}`,
		`{"limit": 5, "window_ms": 5, "algorithm": 1}`,
		`{"limit": "5", "window_ms": 5}`,
		`{"limit": 5.5, "window_ms": 5}`,
		`{"limit": 1e3, "window_ms": 5}`,
		`{"limit": 5, "window_ms": true}`,
		`{"limit": 5, "window_ms": 5, "cost": "1"}`,
		`{"limit": 5, "window_ms": 5, "extra": 1}`,
		`{"limit": 5, "window_ms": 5}{}`,
		`{"limit": 5, "window_ms": 5`,
	} {
		r := rlCheck(s, "v", body)
		if r.Status != 400 || r.errorCode() != "invalid_argument" {
			t.Errorf("body %s: %d %s, want 400 invalid_argument", body, r.Status, r.Body)
		}
	}
	if st := s.RT.Stats(); st.Events != 0 {
		t.Fatalf("%d events: invalid requests reached an object", st.Events)
	}
	// The boundaries themselves are accepted.
	for i, body := range []string{
		`{"limit": 1, "window_ms": 1}`,
		`{"limit": 1000000000, "window_ms": 2592000000}`,
		`{"limit": 5, "window_ms": 5, "cost": 1}`,
		`{"limit": 5, "window_ms": 5, "cost": 5}`,
		`{"limit": 5, "window_ms": 5, "cost": null, "algorithm": null}`,
		`{"limit": 5, "window_ms": 5, "algorithm": "token_bucket"}`,
		` {"window_ms": 5, "limit": 5} `,
	} {
		rlCheck(s, fmt.Sprint("ok", i), body).expect(t, 200, "")
	}
}

func TestRateLimitBodyTooLarge(t *testing.T) {
	s := rlServer(t)
	big := `{"limit": 5, "window_ms": 5, "algorithm": "` + strings.Repeat("x", DefaultMaxBody) + `"}`
	rlCheck(s, "k", big).expect(t, http.StatusRequestEntityTooLarge, "payload_too_large")
	// Just under the limit is judged on its content.
	pad := `{"limit": 5, "window_ms": 5}`
	rlCheck(s, "k", pad+strings.Repeat(" ", DefaultMaxBody-len(pad))).expect(t, 200, "")
}

func TestRateLimitRoutes(t *testing.T) {
	s := rlServer(t)
	for _, m := range []string{"GET", "PUT", "PATCH", "DELETE"} {
		r := s.do(m, "/v1/ratelimit/k/check", nil).expect(t, http.StatusMethodNotAllowed, "method_not_allowed")
		if r.Header.Get("Allow") != "POST" {
			t.Fatalf("%s: Allow %q, want POST", m, r.Header.Get("Allow"))
		}
	}
	for _, p := range []string{"/v1/ratelimit/k", "/v1/ratelimit/k/", "/v1/ratelimit/k/check/x", "/v1/ratelimit/k/checks", "/v1/ratelimit"} {
		s.do("POST", p, `{"limit": 1, "window_ms": 1}`).expect(t, http.StatusNotFound, "not_found")
	}
}

func TestRateLimitKeys(t *testing.T) {
	s := rlServer(t)
	body := `{"limit": 1, "window_ms": 60000}`
	for _, key := range []string{"x%00y", "x%7Fy", "x%0Ay", "%FF", "%C2%85", strings.Repeat("k", 257), strings.Repeat("%C3%A9", 128) + "k"} {
		rlCheck(s, key, body).expect(t, 400, "invalid_argument")
	}
	// Keys are percent-decoded, and each is its own object.
	for _, key := range []string{"a%2Fb", "a%252Fb", "a%20b", "%E6%97%A5%E6%9C%AC", strings.Repeat("k", 256), strings.Repeat("%C3%A9", 128)} {
		expectAllowed(t, rlCheck(s, key, body), 0, 60_000)
	}
	expectDenied(t, rlCheck(s, "a%2fb", body), 60_000) // the same key as a%2Fb
}

func TestRateLimitNeedsTheToken(t *testing.T) {
	s := rlServer(t, withConfig(func(c *Config) { c.Token = "t0ken" }))
	rlCheck(s, "k", `{"limit": 1, "window_ms": 1}`).expect(t, 401, "unauthorized")
	rlCheck(s, "k", `not even JSON`).expect(t, 401, "unauthorized")
	s.do("POST", "/v1/ratelimit/k/check", `{"limit": 1, "window_ms": 1}`, "Authorization", "Bearer t0ken").expect(t, 200, "")
}

// Retry-After is retry_after_ms rounded up to whole seconds, never 0.
func TestRateLimitRetryAfterRounding(t *testing.T) {
	s := rlServer(t)
	for _, window := range []int64{1, 999, 1000, 1001, 2500} {
		key := fmt.Sprint("r", window)
		body := fmt.Sprintf(`{"limit": 1, "window_ms": %d}`, window)
		expectAllowed(t, rlCheck(s, key, body), 0, window)
		expectDenied(t, rlCheck(s, key, body), window) // checks the header too
	}
}
