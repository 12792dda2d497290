package gateway

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/durableobjects/durable"
	"github.com/durableobjects/durable/durabletest"
)

var lockT0 = time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)

// lockAnswer is an answer to a request made off the test's goroutine.
type lockAnswer struct {
	resp *response
	err  error
}

// lockAsync sends a POST in the background.
func (s *testServer) lockAsync(path string, body any) chan lockAnswer {
	ch := make(chan lockAnswer, 1)
	b, err := json.Marshal(body)
	if err != nil {
		ch <- lockAnswer{err: err}
		return ch
	}
	go func() {
		resp, err := s.client.Post(s.URL+path, "application/json", bytes.NewReader(b))
		if err != nil {
			ch <- lockAnswer{err: err}
			return
		}
		defer resp.Body.Close()
		out := &response{Status: resp.StatusCode, Header: resp.Header}
		out.Body, err = io.ReadAll(resp.Body)
		if err == nil && len(out.Body) > 0 {
			err = json.Unmarshal(out.Body, &out.JSON)
		}
		ch <- lockAnswer{resp: out, err: err}
	}()
	return ch
}

// lockWaiter starts an acquire that must wait and returns once it waits:
// its deadline timer is armed on the fake clock.
func (s *testServer) lockWaiter(t *testing.T, name string, body map[string]any) chan lockAnswer {
	t.Helper()
	deadline := s.Clock.Now().Add(time.Duration(body["wait_ms"].(int)) * time.Millisecond)
	if s.Clock.HasTimer(deadline) {
		t.Fatalf("another timer is due at the waiter's deadline %v: pick another wait_ms", deadline)
	}
	ch := s.lockAsync("/v1/locks/"+name+"/acquire", body)
	lockPoll(t, "the acquire to wait", func() bool {
		if len(ch) > 0 {
			a := <-ch
			t.Fatalf("the acquire answered instead of waiting: %+v %v", a.resp, a.err)
		}
		return s.Clock.HasTimer(deadline)
	})
	return ch
}

func lockRecv(t *testing.T, ch chan lockAnswer) *response {
	t.Helper()
	select {
	case a := <-ch:
		if a.err != nil {
			t.Fatal(a.err)
		}
		return a.resp
	case <-time.After(20 * time.Second):
		t.Fatal("no answer")
		return nil
	}
}

// lockPending fails if the request has answered.
func lockPending(t *testing.T, ch chan lockAnswer, what string) {
	t.Helper()
	select {
	case a := <-ch:
		t.Fatalf("%s answered early: %+v %v", what, a.resp, a.err)
	default:
	}
}

func lockPoll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func ms(t time.Time) int64 { return t.UnixMilli() }

// checkLockStatus checks every field of GET /v1/locks/{name}; exp 0 and
// owner nil expect nulls.
func checkLockStatus(t *testing.T, s *testServer, name string, held bool, fencing, exp int64, owner *string) {
	t.Helper()
	r := s.do("GET", "/v1/locks/"+name, nil).expect(t, 200, "")
	if len(r.JSON) != 4 {
		t.Fatalf("GET body has %d fields, want 4: %s", len(r.JSON), r.Body)
	}
	if r.JSON["held"] != held || r.num(t, "fencing") != fencing {
		t.Fatalf("GET %s = %s, want held %v fencing %d", name, r.Body, held, fencing)
	}
	if v, ok := r.JSON["expires_at_ms"]; !ok || (exp == 0 && v != nil) || (exp != 0 && r.num(t, "expires_at_ms") != exp) {
		t.Fatalf("GET %s = %s, want expires_at_ms %d (0: null)", name, r.Body, exp)
	}
	if v, ok := r.JSON["owner"]; !ok || (owner == nil && v != nil) || (owner != nil && v != *owner) {
		t.Fatalf("GET %s = %s, want owner %v", name, r.Body, owner)
	}
}

func checkGrant(t *testing.T, r *response, fencing, exp int64) string {
	t.Helper()
	r.expect(t, 200, "")
	if len(r.JSON) != 3 || r.num(t, "fencing") != fencing || r.num(t, "expires_at_ms") != exp {
		t.Fatalf("grant %s, want fencing %d expires_at_ms %d", r.Body, fencing, exp)
	}
	tok := r.str(t, "token")
	if raw, err := base64.RawURLEncoding.DecodeString(tok); err != nil || len(raw) < 16 || len(tok) < 22 {
		t.Fatalf("token %q is not ≥128 bits of base64url without padding", tok)
	}
	return tok
}

func strp(s string) *string { return &s }

func TestLocksAcquireRenewReleaseGet(t *testing.T) {
	s := newTestServer(t, withFakeClock(durabletest.NewClock(lockT0)))
	now := lockT0
	checkLockStatus(t, s, "job", false, 0, 0, nil)

	// Empty body: every field has its default (ttl_ms 5000, no wait).
	tok := checkGrant(t, s.do("POST", "/v1/locks/job/acquire", ""), 1, ms(now)+5000)
	checkLockStatus(t, s, "job", true, 1, ms(now)+5000, nil)
	s.do("POST", "/v1/locks/job/acquire", map[string]any{}).expect(t, 409, "lock_held")
	s.do("POST", "/v1/locks/job/acquire", map[string]any{"ttl_ms": 10, "wait_ms": 0, "owner": "x"}).expect(t, 409, "lock_held")
	// Locks are per name.
	checkGrant(t, s.do("POST", "/v1/locks/other/acquire", map[string]any{"ttl_ms": 1}), 1, ms(now)+1)

	s.Clock.Advance(1500 * time.Millisecond)
	now = now.Add(1500 * time.Millisecond)
	r := s.do("POST", "/v1/locks/job/renew", map[string]any{"token": tok, "ttl_ms": 1000}).expect(t, 200, "")
	if len(r.JSON) != 1 || r.num(t, "expires_at_ms") != ms(now)+1000 {
		t.Fatalf("renew %s", r.Body)
	}
	checkLockStatus(t, s, "job", true, 1, ms(now)+1000, nil)
	r = s.do("POST", "/v1/locks/job/renew", map[string]any{"token": tok}).expect(t, 200, "")
	if r.num(t, "expires_at_ms") != ms(now)+5000 {
		t.Fatalf("renew with the default TTL %s", r.Body)
	}
	for _, bad := range []string{"", "nope", tok + "x", strings.ToUpper(tok)} {
		if bad == tok {
			continue
		}
		s.do("POST", "/v1/locks/job/renew", map[string]any{"token": bad, "ttl_ms": 1000}).expect(t, 409, "not_owner")
		s.do("POST", "/v1/locks/job/release", map[string]any{"token": bad}).expect(t, 409, "not_owner")
	}
	s.do("POST", "/v1/locks/other/release", map[string]any{"token": tok}).expect(t, 409, "not_owner")

	r = s.do("POST", "/v1/locks/job/release", map[string]any{"token": tok}).expect(t, 200, "")
	if string(bytes.TrimSpace(r.Body)) != `{"released":true}` {
		t.Fatalf("release %s", r.Body)
	}
	checkLockStatus(t, s, "job", false, 1, 0, nil)
	// A released token is dead.
	s.do("POST", "/v1/locks/job/release", map[string]any{"token": tok}).expect(t, 409, "not_owner")
	s.do("POST", "/v1/locks/job/renew", map[string]any{"token": tok}).expect(t, 409, "not_owner")

	tok2 := checkGrant(t, s.do("POST", "/v1/locks/job/acquire", map[string]any{"ttl_ms": 3600000, "owner": "worker-7"}), 2, ms(now)+3600000)
	if tok2 == tok {
		t.Fatal("the same token twice")
	}
	checkLockStatus(t, s, "job", true, 2, ms(now)+3600000, strp("worker-7"))
	s.do("POST", "/v1/locks/job/release", map[string]any{"token": tok2}).expect(t, 200, "")
	// An empty label is a label; null is none.
	tok3 := checkGrant(t, s.do("POST", "/v1/locks/job/acquire", `{"owner": ""}`), 3, ms(now)+5000)
	checkLockStatus(t, s, "job", true, 3, ms(now)+5000, strp(""))
	s.do("POST", "/v1/locks/job/release", map[string]any{"token": tok3}).expect(t, 200, "")
	checkGrant(t, s.do("POST", "/v1/locks/job/acquire", `{"owner": null, "ttl_ms": null, "wait_ms": null}`), 4, ms(now)+5000)
	checkLockStatus(t, s, "job", true, 4, ms(now)+5000, nil)

	// Names are percent-decoded and may hold any printable UTF-8.
	checkGrant(t, s.do("POST", "/v1/locks/a%2Fb%20c%E2%9C%93/acquire", ""), 1, ms(now)+5000)
	checkLockStatus(t, s, "a%2Fb%20c%E2%9C%93", true, 1, ms(now)+5000, nil)
}

func TestLocksExpiry(t *testing.T) {
	s := newTestServer(t, withFakeClock(durabletest.NewClock(lockT0)))
	tok := checkGrant(t, s.do("POST", "/v1/locks/l/acquire", `{"ttl_ms": 1000, "owner": "o"}`), 1, ms(lockT0)+1000)
	s.Clock.Advance(999 * time.Millisecond)
	checkLockStatus(t, s, "l", true, 1, ms(lockT0)+1000, strp("o"))
	s.do("POST", "/v1/locks/l/acquire", "").expect(t, 409, "lock_held")
	s.Clock.Advance(time.Millisecond) // now == expires_at_ms: expired
	checkLockStatus(t, s, "l", false, 1, 0, nil)
	s.do("POST", "/v1/locks/l/renew", map[string]any{"token": tok}).expect(t, 409, "not_owner")
	s.do("POST", "/v1/locks/l/release", map[string]any{"token": tok}).expect(t, 409, "not_owner")
	checkGrant(t, s.do("POST", "/v1/locks/l/acquire", ""), 2, ms(lockT0)+1000+5000)
}

func TestLocksValidation(t *testing.T) {
	s := newTestServer(t)
	long := strings.Repeat("o", 256)
	for i, tc := range []struct {
		route, body string
		ok          bool
	}{
		{"acquire", `{"ttl_ms": 0}`, false},
		{"acquire", `{"ttl_ms": -1}`, false},
		{"acquire", `{"ttl_ms": 1}`, true},
		{"acquire", `{"ttl_ms": 3600000}`, true},
		{"acquire", `{"ttl_ms": 3600001}`, false},
		{"acquire", `{"ttl_ms": 1.5}`, false},
		{"acquire", `{"ttl_ms": "5000"}`, false},
		{"acquire", `{"ttl_ms": 1e3}`, false},
		{"acquire", `{"wait_ms": -1}`, false},
		{"acquire", `{"wait_ms": 0}`, true},
		{"acquire", `{"wait_ms": 60000}`, true},
		{"acquire", `{"wait_ms": 60001}`, false},
		{"acquire", `{"wait_ms": true}`, false},
		{"acquire", `{"owner": "` + long + `"}`, true},
		{"acquire", `{"owner": "` + long + `o"}`, false},
		{"acquire", `{"owner": "é` + long[2:] + `"}`, true},  // 256 bytes
		{"acquire", `{"owner": "é` + long[1:] + `"}`, false}, // 257 bytes
		{"acquire", `{"owner": 5}`, false},
		{"acquire", `{"owner": ["a"]}`, false},
		{"acquire", `{"ttl": 5000}`, false},
		{"acquire", `{"ttl_ms": 5000`, false},
		{"acquire", `{"ttl_ms": 5000} {}`, false},
		{"acquire", `[]`, false},
		{"acquire", `null`, false},
		{"acquire", `"x"`, false},
		{"renew", ``, false},
		{"renew", `{}`, false},
		{"renew", `{"token": null}`, false},
		{"renew", `{"ttl_ms": 1000}`, false},
		{"renew", `{"token": 5}`, false},
		{"renew", `{"token": "t", "ttl_ms": 0}`, false},
		{"renew", `{"token": "t", "ttl_ms": 3600001}`, false},
		{"renew", `{"token": "t", "ttl_ms": "1"}`, false},
		{"renew", `{"token": "t", "extra": 1}`, false},
		{"renew", `{"token": "t", "ttl_ms": 1}`, true},
		{"renew", `{"token": "t", "ttl_ms": 3600000}`, true},
		{"release", ``, false},
		{"release", `{}`, false},
		{"release", `{"token": null}`, false},
		{"release", `{"token": 1}`, false},
		{"release", `{"token": "t", "ttl_ms": 1}`, false},
		{"release", `{"token": "t"}`, true},
	} {
		// A fresh lock each time: valid acquires get 200, valid renews and
		// releases (of a token that holds nothing) 409 not_owner.
		r := s.do("POST", fmt.Sprintf("/v1/locks/v%d/%s", i, tc.route), tc.body)
		switch {
		case !tc.ok:
			if r.Status != 400 || r.errorCode() != "invalid_argument" {
				t.Errorf("%s %s: %d %s, want 400 invalid_argument", tc.route, tc.body, r.Status, r.Body)
			}
		case tc.route == "acquire":
			if r.Status != 200 {
				t.Errorf("%s %s: %d %s, want 200", tc.route, tc.body, r.Status, r.Body)
			}
		default:
			if r.Status != 409 || r.errorCode() != "not_owner" {
				t.Errorf("%s %s: %d %s, want 409 not_owner", tc.route, tc.body, r.Status, r.Body)
			}
		}
		if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
			t.Errorf("%s %s: Content-Type %q", tc.route, tc.body, r.Header.Get("Content-Type"))
		}
	}

	// Path parameters: 1-256 bytes of UTF-8 without control characters.
	ok256 := strings.Repeat("n", 256)
	s.do("POST", "/v1/locks/"+ok256+"/acquire", "").expect(t, 200, "")
	s.do("GET", "/v1/locks/"+ok256, nil).expect(t, 200, "")
	for _, bad := range []string{ok256 + "n", "a%00b", "a%0Ab", "%FF", "a%7Fb"} {
		for _, route := range []string{"/acquire", "/renew", "/release"} {
			s.do("POST", "/v1/locks/"+bad+route, `{"token": "t"}`).expect(t, 400, "invalid_argument")
		}
		s.do("GET", "/v1/locks/"+bad, nil).expect(t, 400, "invalid_argument")
	}

	// Bodies over the limit answer 413, on every POST route.
	big := `{"token": "` + strings.Repeat("x", DefaultMaxBody) + `"}`
	for _, route := range []string{"acquire", "renew", "release"} {
		s.do("POST", "/v1/locks/big/"+route, big).expect(t, 413, "payload_too_large")
	}
	checkLockStatus(t, s, "big", false, 0, 0, nil)

	// Wrong methods answer 405 with Allow; unknown paths 404.
	for _, tc := range []struct{ method, path, allow string }{
		{"GET", "/v1/locks/x/acquire", "POST"},
		{"PUT", "/v1/locks/x/renew", "POST"},
		{"DELETE", "/v1/locks/x/release", "POST"},
		{"POST", "/v1/locks/x", "GET"},
		{"DELETE", "/v1/locks/x", "GET"},
	} {
		r := s.do(tc.method, tc.path, nil).expect(t, 405, "method_not_allowed")
		if !strings.Contains(r.Header.Get("Allow"), tc.allow) {
			t.Errorf("%s %s: Allow %q, want %s", tc.method, tc.path, r.Header.Get("Allow"), tc.allow)
		}
	}
	s.do("POST", "/v1/locks/x/steal", "").expect(t, 404, "not_found")
	s.do("GET", "/v1/locks", nil).expect(t, 404, "not_found")
	s.do("GET", "/v1/locks/x/y", nil).expect(t, 404, "not_found")
}

func TestLocksNeedTheToken(t *testing.T) {
	s := newTestServer(t, withConfig(func(c *Config) { c.Token = "s3cret" }))
	s.do("POST", "/v1/locks/x/acquire", "").expect(t, 401, "unauthorized")
	s.do("GET", "/v1/locks/x", nil).expect(t, 401, "unauthorized")
	s.do("POST", "/v1/locks/x/acquire", "", "Authorization", "Bearer s3cret").expect(t, 200, "")
	if r := s.do("GET", "/v1/locks/x", nil, "Authorization", "Bearer s3cret").expect(t, 200, ""); r.JSON["held"] != true {
		t.Fatalf("GET %s", r.Body)
	}
}

func TestLocksTwentySimultaneousAcquires(t *testing.T) {
	s := newTestServer(t)
	const n = 20
	start := make(chan struct{})
	var wg sync.WaitGroup
	answers := make([]chan lockAnswer, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			answers[i] = s.lockAsync("/v1/locks/hot/acquire", map[string]any{"ttl_ms": 60000})
		}()
	}
	close(start)
	wg.Wait()
	var tokens []string
	held := 0
	for _, ch := range answers {
		r := lockRecv(t, ch)
		switch {
		case r.Status == 200:
			tokens = append(tokens, r.str(t, "token"))
		case r.Status == 409 && r.errorCode() == "lock_held":
			held++
		default:
			t.Fatalf("acquire answered %d %s", r.Status, r.Body)
		}
	}
	if len(tokens) != 1 || held != n-1 {
		t.Fatalf("%d grants and %d lock_held, want 1 and %d", len(tokens), held, n-1)
	}
	r := s.do("GET", "/v1/locks/hot", nil).expect(t, 200, "")
	if r.JSON["held"] != true || r.num(t, "fencing") != 1 {
		t.Fatalf("GET %s", r.Body)
	}
}

// Workers take one lock in turn over HTTP, waiting for it: no two are
// ever inside at once, and fencing only grows.
func TestLocksMutualExclusionOverHTTP(t *testing.T) {
	s := newTestServer(t)
	const workers, rounds = 8, 15
	var (
		inside atomic.Int32
		mu     sync.Mutex
		last   int64
		grants int
	)
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				a := <-s.lockAsync("/v1/locks/mx/acquire", map[string]any{"ttl_ms": 60000, "wait_ms": 60000, "owner": fmt.Sprint("w", w)})
				if a.err != nil || a.resp.Status != 200 {
					errs <- fmt.Errorf("acquire: %v %+v", a.err, a.resp)
					return
				}
				if n := inside.Add(1); n != 1 {
					errs <- fmt.Errorf("%d holders at once", n)
				}
				f := int64(a.resp.JSON["fencing"].(float64))
				mu.Lock()
				if f <= last {
					errs <- fmt.Errorf("fencing %d after %d", f, last)
				}
				last = f
				grants++
				mu.Unlock()
				inside.Add(-1)
				rel := <-s.lockAsync("/v1/locks/mx/release", map[string]any{"token": a.resp.JSON["token"]})
				if rel.err != nil || rel.resp.Status != 200 {
					errs <- fmt.Errorf("release: %v %+v", rel.err, rel.resp)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if grants != workers*rounds || last != workers*rounds {
		t.Fatalf("%d grants, last fencing %d, want %d", grants, last, workers*rounds)
	}
}

func TestLocksFencingAcrossRestarts(t *testing.T) {
	s := newTestServer(t)
	dir := s.Dir
	var last int64
	for round := range 3 {
		if round > 0 {
			s.Close()
			s = newTestServer(t, withRuntime(func(rt *durable.Runtime) { rt.Dir = dir }))
		}
		for range 2 {
			r := s.do("POST", "/v1/locks/f/acquire", "").expect(t, 200, "")
			f := r.num(t, "fencing")
			if f != last+1 {
				t.Fatalf("round %d: fencing %d after %d", round, f, last)
			}
			last = f
			s.do("POST", "/v1/locks/f/release", map[string]any{"token": r.str(t, "token")}).expect(t, 200, "")
		}
		if r := s.do("GET", "/v1/locks/f", nil).expect(t, 200, ""); r.num(t, "fencing") != last {
			t.Fatalf("GET after round %d: %s", round, r.Body)
		}
	}
}

func TestLocksHeldAcrossRestartUntilTTL(t *testing.T) {
	clock := durabletest.NewClock(lockT0)
	s := newTestServer(t, withFakeClock(clock))
	dir := s.Dir
	exp := ms(lockT0) + 10000
	tok := checkGrant(t, s.do("POST", "/v1/locks/r/acquire", `{"ttl_ms": 10000, "owner": "before"}`), 1, exp)
	s.Close()

	clock.Advance(5 * time.Second)
	s = newTestServer(t, withFakeClock(clock), withRuntime(func(rt *durable.Runtime) { rt.Dir = dir }))
	checkLockStatus(t, s, "r", true, 1, exp, strp("before"))
	s.do("POST", "/v1/locks/r/acquire", "").expect(t, 409, "lock_held")
	s.Close()

	clock.Set(time.UnixMilli(exp - 1))
	s = newTestServer(t, withFakeClock(clock), withRuntime(func(rt *durable.Runtime) { rt.Dir = dir }))
	checkLockStatus(t, s, "r", true, 1, exp, strp("before"))
	clock.Set(time.UnixMilli(exp))
	checkLockStatus(t, s, "r", false, 1, 0, nil)
	s.do("POST", "/v1/locks/r/release", map[string]any{"token": tok}).expect(t, 409, "not_owner")
	checkGrant(t, s.do("POST", "/v1/locks/r/acquire", ""), 2, exp+5000)
}

func TestLocksWaitersFIFOAndOtherRequestsProceed(t *testing.T) {
	s := newTestServer(t, withFakeClock(durabletest.NewClock(lockT0)))
	holder := checkGrant(t, s.do("POST", "/v1/locks/q/acquire", `{"ttl_ms": 3600000}`), 1, ms(lockT0)+3600000)
	var ws []chan lockAnswer
	for i := range 3 {
		ws = append(ws, s.lockWaiter(t, "q", map[string]any{"ttl_ms": 1000 + i, "wait_ms": 30000 + i, "owner": fmt.Sprint("w", i)}))
	}

	// While they wait, every other request of the lock is answered.
	checkLockStatus(t, s, "q", true, 1, ms(lockT0)+3600000, nil)
	s.do("POST", "/v1/locks/q/acquire", "").expect(t, 409, "lock_held")
	s.do("POST", "/v1/locks/q/renew", map[string]any{"token": holder, "ttl_ms": 3600000}).expect(t, 200, "")
	s.do("POST", "/v1/locks/q/release", map[string]any{"token": "wrong"}).expect(t, 409, "not_owner")
	s.do("POST", "/v1/locks/elsewhere/acquire", "").expect(t, 200, "")
	for _, w := range ws {
		lockPending(t, w, "a waiter")
	}

	tok := holder
	for i, w := range ws {
		s.do("POST", "/v1/locks/q/release", map[string]any{"token": tok}).expect(t, 200, "")
		tok = checkGrant(t, lockRecv(t, w), int64(i+2), ms(lockT0)+int64(1000+i))
		checkLockStatus(t, s, "q", true, int64(i+2), ms(lockT0)+int64(1000+i), strp(fmt.Sprint("w", i)))
		for _, later := range ws[i+1:] {
			lockPending(t, later, "a later waiter")
		}
	}
}

func TestLocksWaiterGetsTheLockOnExpiry(t *testing.T) {
	s := newTestServer(t, withFakeClock(durabletest.NewClock(lockT0)))
	exp := lockT0.Add(2 * time.Second)
	checkGrant(t, s.do("POST", "/v1/locks/e/acquire", `{"ttl_ms": 2000}`), 1, ms(exp))
	w := s.lockWaiter(t, "e", map[string]any{"ttl_ms": 4000, "wait_ms": 10000, "owner": "next"})
	// Nobody calls: the alarm at the holder's expiry hands the lock on.
	lockPoll(t, "the alarm timer", func() bool { return s.Clock.HasTimer(exp) })
	s.Clock.Set(exp.Add(-time.Millisecond))
	checkLockStatus(t, s, "e", true, 1, ms(exp), nil)
	lockPending(t, w, "the waiter")
	s.Clock.Set(exp)
	checkGrant(t, lockRecv(t, w), 2, ms(exp)+4000)
	checkLockStatus(t, s, "e", true, 2, ms(exp)+4000, strp("next"))
}

func TestLocksWaiterTimesOut(t *testing.T) {
	s := newTestServer(t, withFakeClock(durabletest.NewClock(lockT0)))
	holder := checkGrant(t, s.do("POST", "/v1/locks/t/acquire", `{"ttl_ms": 60000}`), 1, ms(lockT0)+60000)
	w := s.lockWaiter(t, "t", map[string]any{"wait_ms": 1500})
	s.Clock.Advance(1499 * time.Millisecond)
	checkLockStatus(t, s, "t", true, 1, ms(lockT0)+60000, nil)
	lockPending(t, w, "the waiter")
	s.Clock.Advance(time.Millisecond)
	lockRecv(t, w).expect(t, 409, "lock_held")
	// The timed-out waiter left no trace: a release frees the lock.
	s.do("POST", "/v1/locks/t/release", map[string]any{"token": holder}).expect(t, 200, "")
	checkLockStatus(t, s, "t", false, 1, 0, nil)
}

func TestLocksShutdownAnswersWaiters(t *testing.T) {
	s := newTestServer(t, withFakeClock(durabletest.NewClock(lockT0)))
	checkGrant(t, s.do("POST", "/v1/locks/s/acquire", `{"ttl_ms": 60000}`), 1, ms(lockT0)+60000)
	w := s.lockWaiter(t, "s", map[string]any{"wait_ms": 60000})
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	r := lockRecv(t, w).expect(t, 503, "unavailable")
	if r.Header.Get("Retry-After") == "" {
		t.Fatal("503 without Retry-After")
	}
	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		t.Fatal("the server did not shut down")
	}
}
