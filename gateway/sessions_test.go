package gateway

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/durableobjects/durable"
	"github.com/durableobjects/durable/durabletest"
	"github.com/durableobjects/durable/patterns/session"
)

var sessionStart = time.UnixMilli(1_750_000_000_000)

// createSession posts a session and returns the 201 answer.
func (s *testServer) createSession(t *testing.T, body any) *response {
	t.Helper()
	return s.do("POST", "/v1/sessions", body).expect(t, 201, "")
}

// shardStats reads the stats of the shard holding the session id.
func (s *testServer) shardStats(t *testing.T, id string) session.ShardStats {
	t.Helper()
	shard, ok := session.ParseID(id)
	if !ok {
		t.Fatalf("malformed session ID %q", id)
	}
	ns, ok := s.RT.Namespace(session.Class)
	if !ok {
		t.Fatal("session class not registered")
	}
	st, err := durable.Call[session.ShardStats](context.Background(), ns.GetByName(session.ShardName(shard)), "Stats", nil)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func keys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func TestSessionLifecycle(t *testing.T) {
	s := newTestServer(t, withFakeClock(durabletest.NewClock(sessionStart)))
	now := sessionStart.UnixMilli()

	c := s.createSession(t, map[string]any{"user_id": "alice", "data": map[string]any{"cart": []int{1, 2}}, "ttl_ms": 60_000})
	if got := keys(c.JSON); !slices.Equal(got, []string{"expires_at_ms", "id", "user_id"}) {
		t.Fatalf("create answer fields %v", got)
	}
	id := c.str(t, "id")
	if len(id) < 22 || strings.ContainsAny(id, "+/=") || c.str(t, "user_id") != "alice" || c.num(t, "expires_at_ms") != now+60_000 {
		t.Fatalf("create answer %s", c.Body)
	}

	g := s.do("GET", "/v1/sessions/"+id, nil).expect(t, 200, "")
	if got := keys(g.JSON); !slices.Equal(got, []string{"created_at_ms", "data", "expires_at_ms", "id", "user_id"}) {
		t.Fatalf("get answer fields %v", got)
	}
	if g.str(t, "id") != id || g.str(t, "user_id") != "alice" || g.num(t, "created_at_ms") != now || g.num(t, "expires_at_ms") != now+60_000 {
		t.Fatalf("get answer %s", g.Body)
	}
	if d := fmt.Sprint(g.JSON["data"]); d != "map[cart:[1 2]]" {
		t.Fatalf("data %s", d)
	}

	// PATCH without data keeps it; ttl_ms slides expiry to now + ttl_ms.
	s.Clock.Advance(10 * time.Second)
	p := s.do("PATCH", "/v1/sessions/"+id, `{"ttl_ms": 120000}`).expect(t, 200, "")
	if p.num(t, "expires_at_ms") != now+10_000+120_000 || fmt.Sprint(p.JSON["data"]) != "map[cart:[1 2]]" || p.num(t, "created_at_ms") != now {
		t.Fatalf("patch ttl: %s", p.Body)
	}
	if got := keys(p.JSON); !slices.Equal(got, []string{"created_at_ms", "data", "expires_at_ms", "id", "user_id"}) {
		t.Fatalf("patch answer fields %v", got)
	}
	// PATCH with data replaces the whole value, and keeps the expiry.
	p = s.do("PATCH", "/v1/sessions/"+id, `{"data": {"theme": "dark"}}`).expect(t, 200, "")
	if fmt.Sprint(p.JSON["data"]) != "map[theme:dark]" || p.num(t, "expires_at_ms") != now+130_000 {
		t.Fatalf("patch data: %s", p.Body)
	}
	// data: null sets null.
	p = s.do("PATCH", "/v1/sessions/"+id, `{"data": null}`).expect(t, 200, "")
	if v, ok := p.JSON["data"]; !ok || v != nil {
		t.Fatalf("patch null: %s", p.Body)
	}
	// An empty body (and {}) changes nothing and answers as GET.
	s.do("PATCH", "/v1/sessions/"+id, nil).expect(t, 200, "")
	p = s.do("PATCH", "/v1/sessions/"+id, `{}`).expect(t, 200, "")
	if v, ok := p.JSON["data"]; !ok || v != nil || p.num(t, "expires_at_ms") != now+130_000 {
		t.Fatalf("empty patch: %s", p.Body)
	}
	// Both at once.
	p = s.do("PATCH", "/v1/sessions/"+id, `{"data": [true], "ttl_ms": 1000}`).expect(t, 200, "")
	if fmt.Sprint(p.JSON["data"]) != "[true]" || p.num(t, "expires_at_ms") != now+11_000 {
		t.Fatalf("patch both: %s", p.Body)
	}
	g = s.do("GET", "/v1/sessions/"+id, nil).expect(t, 200, "")
	if fmt.Sprint(g.JSON["data"]) != "[true]" {
		t.Fatalf("get after patch: %s", g.Body)
	}

	r := s.do("DELETE", "/v1/sessions/"+id, nil).expect(t, 204, "")
	if len(r.Body) != 0 {
		t.Fatalf("204 with a body %q", r.Body)
	}
	s.do("GET", "/v1/sessions/"+id, nil).expect(t, 404, "not_found")
	s.do("PATCH", "/v1/sessions/"+id, `{"ttl_ms": 5000}`).expect(t, 404, "not_found")
	s.do("DELETE", "/v1/sessions/"+id, nil).expect(t, 404, "not_found")
}

func TestSessionDefaults(t *testing.T) {
	s := newTestServer(t, withFakeClock(durabletest.NewClock(sessionStart)))
	c := s.createSession(t, `{"user_id": "bob"}`)
	if c.num(t, "expires_at_ms") != sessionStart.UnixMilli()+86_400_000 {
		t.Fatalf("default ttl: %s", c.Body)
	}
	g := s.do("GET", "/v1/sessions/"+c.str(t, "id"), nil).expect(t, 200, "")
	if v, ok := g.JSON["data"]; !ok || v != nil {
		t.Fatalf("default data: %s", g.Body)
	}
	// data as sent: scalars, strings with escapes.
	c = s.createSession(t, `{"user_id": "bob", "data": "caf\u00e9 \"q\""}`)
	g = s.do("GET", "/v1/sessions/"+c.str(t, "id"), nil).expect(t, 200, "")
	if g.JSON["data"] != `café "q"` {
		t.Fatalf("string data: %s", g.Body)
	}
}

func TestSessionValidation(t *testing.T) {
	s := newTestServer(t)
	big := func(n int) string { return `"` + strings.Repeat("x", n-2) + `"` } // n bytes of JSON

	// Accepted at the boundaries.
	for _, body := range []string{
		`{"user_id": "` + strings.Repeat("u", 256) + `"}`,
		`{"user_id": "u", "ttl_ms": 1000}`,
		`{"user_id": "u", "ttl_ms": 31536000000}`,
		`{"user_id": "u", "data": ` + big(64<<10) + `}`,
		`{"user_id": "日本"}`,
	} {
		s.do("POST", "/v1/sessions", body).expect(t, 201, "")
	}
	id := s.createSession(t, `{"user_id": "u"}`).str(t, "id")
	// data of exactly 64 KiB comes back whole.
	full := s.createSession(t, `{"user_id": "u", "data": `+big(64<<10)+`}`).str(t, "id")
	if g := s.do("GET", "/v1/sessions/"+full, nil).expect(t, 200, ""); len(g.JSON["data"].(string)) != 64<<10-2 {
		t.Fatal("64 KiB of data did not come back whole")
	}

	for _, tc := range []struct{ name, body string }{
		{"empty body", ``},
		{"empty object", `{}`},
		{"user_id null", `{"user_id": null}`},
		{"user_id empty", `{"user_id": ""}`},
		{"user_id 257 bytes", `{"user_id": "` + strings.Repeat("u", 257) + `"}`},
		{"user_id control char", `{"user_id": "a\u0001b"}`},
		{"user_id newline", `{"user_id": "a\nb"}`},
		{"user_id number", `{"user_id": 7}`},
		{"user_id invalid UTF-8", "{\"user_id\": \"bad\xffutf\"}"},
		{"data with invalid UTF-8", "{\"user_id\": \"u\", \"data\": \"bad\xffutf\"}"},
		{"user_id with half a surrogate pair", `{"user_id": "a\ud800b"}`},
		{"data over 64 KiB", `{"user_id": "u", "data": ` + big(64<<10+1) + `}`},
		{"ttl_ms 999", `{"user_id": "u", "ttl_ms": 999}`},
		{"ttl_ms 0", `{"user_id": "u", "ttl_ms": 0}`},
		{"ttl_ms negative", `{"user_id": "u", "ttl_ms": -1000}`},
		{"ttl_ms over a year", `{"user_id": "u", "ttl_ms": 31536000001}`},
		{"ttl_ms fraction", `{"user_id": "u", "ttl_ms": 1500.5}`},
		{"ttl_ms string", `{"user_id": "u", "ttl_ms": "5000"}`},
		{"unknown field", `{"user_id": "u", "ttl": 5000}`},
		{"malformed", `{"user_id": "u"`},
		{"trailing data", `{"user_id": "u"} {}`},
		{"not an object", `["u"]`},
	} {
		t.Run("create "+tc.name, func(t *testing.T) {
			s.do("POST", "/v1/sessions", tc.body).expect(t, 400, "invalid_argument")
		})
	}
	for _, tc := range []struct{ name, body string }{
		{"data over 64 KiB", `{"data": ` + big(64<<10+1) + `}`},
		{"ttl_ms 999", `{"ttl_ms": 999}`},
		{"ttl_ms over a year", `{"ttl_ms": 31536000001}`},
		{"ttl_ms string", `{"ttl_ms": "5000"}`},
		{"unknown field", `{"user_id": "u"}`},
		{"malformed", `{"data": }`},
	} {
		t.Run("patch "+tc.name, func(t *testing.T) {
			s.do("PATCH", "/v1/sessions/"+id, tc.body).expect(t, 400, "invalid_argument")
		})
	}
	s.do("PATCH", "/v1/sessions/"+id, `{"ttl_ms": 1000}`).expect(t, 200, "")
	s.do("PATCH", "/v1/sessions/"+id, `{"ttl_ms": 31536000000}`).expect(t, 200, "")
	s.do("PATCH", "/v1/sessions/"+id, `{"data": `+big(64<<10)+`}`).expect(t, 200, "")

	// Bodies over the 1 MiB limit: 413.
	huge := `{"user_id": "u", "data": ` + big(1<<20) + `}`
	s.do("POST", "/v1/sessions", huge).expect(t, 413, "payload_too_large")
	s.do("PATCH", "/v1/sessions/"+id, huge).expect(t, 413, "payload_too_large")

	// Path parameters: the api.md rules answer 400; an ID the server never
	// made answers 404.
	for _, p := range []string{"/v1/sessions/", "/v1/users/"} {
		suffix := map[string]string{"/v1/sessions/": "", "/v1/users/": "/sessions"}[p]
		s.do("GET", p+strings.Repeat("a", 257)+suffix, nil).expect(t, 400, "invalid_argument")
		s.do("GET", p+"a%01b"+suffix, nil).expect(t, 400, "invalid_argument")
		s.do("GET", p+"%ff"+suffix, nil).expect(t, 400, "invalid_argument")
	}
	s.do("DELETE", "/v1/users/"+strings.Repeat("a", 257)+"/sessions", nil).expect(t, 400, "invalid_argument")
	s.do("GET", "/v1/users/"+strings.Repeat("a", 256)+"/sessions", nil).expect(t, 200, "")
	for _, bad := range []string{"nope", strings.Repeat("A", 24), id + "x", id[:len(id)-1], "__" + id[2:], url.PathEscape("é" + id[2:])} {
		s.do("GET", "/v1/sessions/"+bad, nil).expect(t, 404, "not_found")
		s.do("PATCH", "/v1/sessions/"+bad, `{}`).expect(t, 404, "not_found")
		s.do("DELETE", "/v1/sessions/"+bad, nil).expect(t, 404, "not_found")
	}
	// A PATCH is validated before the ID is looked at.
	s.do("PATCH", "/v1/sessions/nope", `{"ttl_ms": 1}`).expect(t, 400, "invalid_argument")

	// Wrong methods.
	for _, tc := range []struct{ method, path, allow string }{
		{"GET", "/v1/sessions", "POST"},
		{"DELETE", "/v1/sessions", "POST"},
		{"PUT", "/v1/sessions/" + id, "DELETE"},
		{"POST", "/v1/sessions/" + id, "PATCH"},
		{"POST", "/v1/users/u/sessions", "DELETE"},
		{"PATCH", "/v1/users/u/sessions", "GET"},
	} {
		r := s.do(tc.method, tc.path, nil).expect(t, 405, "method_not_allowed")
		if !strings.Contains(r.Header.Get("Allow"), tc.allow) {
			t.Errorf("%s %s: Allow %q, want it to list %s", tc.method, tc.path, r.Header.Get("Allow"), tc.allow)
		}
	}
}

func TestSessionExpiryBoundary(t *testing.T) {
	s := newTestServer(t, withFakeClock(durabletest.NewClock(sessionStart)))
	c := s.createSession(t, `{"user_id": "carol", "ttl_ms": 1000}`)
	id, exp := c.str(t, "id"), c.num(t, "expires_at_ms")

	s.Clock.Set(time.UnixMilli(exp - 1))
	s.do("GET", "/v1/sessions/"+id, nil).expect(t, 200, "")
	if l := s.do("GET", "/v1/users/carol/sessions", nil).expect(t, 200, ""); len(l.JSON["sessions"].([]any)) != 1 {
		t.Fatalf("1 ms before expiry: %s", l.Body)
	}

	s.Clock.Set(time.UnixMilli(exp)) // now == expires_at_ms: expired
	s.do("GET", "/v1/sessions/"+id, nil).expect(t, 404, "not_found")
	s.do("PATCH", "/v1/sessions/"+id, `{"ttl_ms": 60000}`).expect(t, 404, "not_found")
	l := s.do("GET", "/v1/users/carol/sessions", nil).expect(t, 200, "")
	if string(l.Body) != "{\"sessions\":[]}\n" {
		t.Fatalf("listed after expiry: %s", l.Body)
	}
	if r := s.do("DELETE", "/v1/users/carol/sessions", nil).expect(t, 200, ""); r.num(t, "revoked") != 0 {
		t.Fatalf("revoked an expired session: %s", r.Body)
	}
	s.do("DELETE", "/v1/sessions/"+id, nil).expect(t, 404, "not_found")
}

// advanceToAlarm moves the clock to at. The alarm index may hold an earlier
// wake-up (it only moves earlier until a run corrects it); moving the clock
// fires every timer due by then, and a timer armed afterwards for a time
// already past fires at once, so no wait is needed.
func (s *testServer) advanceToAlarm(t *testing.T, at int64) {
	t.Helper()
	s.Clock.Set(time.UnixMilli(at))
}

// pollUntil polls cond until it holds, failing the test after 10 s.
func pollUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestSessionCleanupAlarm(t *testing.T) {
	s := newTestServer(t, withFakeClock(durabletest.NewClock(sessionStart)))
	// A long session, then a short one of the same user (so the same shard):
	// the alarm must be at the short one's expiry, not the latest created.
	long := s.createSession(t, `{"user_id": "dave", "ttl_ms": 3600000}`)
	short := s.createSession(t, `{"user_id": "dave", "ttl_ms": 5000}`)
	shortExp, longExp := short.num(t, "expires_at_ms"), long.num(t, "expires_at_ms")
	// And one more long session created after the short one: it must not
	// postpone the short one's cleanup.
	later := s.createSession(t, `{"user_id": "dave", "ttl_ms": 7200000}`)
	if st := s.shardStats(t, short.str(t, "id")); st.Rows != 3 || st.AlarmAtMS != shortExp {
		t.Fatalf("shard %+v, want 3 rows and the alarm at %d", st, shortExp)
	}

	s.advanceToAlarm(t, shortExp)
	pollUntil(t, "the short session's row to be deleted", func() bool { return s.shardStats(t, short.str(t, "id")).Rows == 2 })
	s.do("GET", "/v1/sessions/"+long.str(t, "id"), nil).expect(t, 200, "")
	s.do("GET", "/v1/sessions/"+later.str(t, "id"), nil).expect(t, 200, "")
	if st := s.shardStats(t, short.str(t, "id")); st.AlarmAtMS != longExp {
		t.Fatalf("alarm after cleanup %+v, want re-armed at %d", st, longExp)
	}

	// Sliding the long one past the later one moves the alarm to the later one.
	p := s.do("PATCH", "/v1/sessions/"+long.str(t, "id"), `{"ttl_ms": 9000000}`).expect(t, 200, "")
	if st := s.shardStats(t, short.str(t, "id")); st.AlarmAtMS != later.num(t, "expires_at_ms") {
		t.Fatalf("alarm after slide %+v, want %d", st, later.num(t, "expires_at_ms"))
	}
	s.advanceToAlarm(t, later.num(t, "expires_at_ms"))
	pollUntil(t, "the later session's row to be deleted", func() bool { return s.shardStats(t, short.str(t, "id")).Rows == 1 })
	s.advanceToAlarm(t, p.num(t, "expires_at_ms"))
	pollUntil(t, "every row to be deleted", func() bool { return s.shardStats(t, short.str(t, "id")).Rows == 0 })
	if st := s.shardStats(t, short.str(t, "id")); st.AlarmAtMS != 0 {
		t.Fatalf("alarm left on an empty shard: %+v", st)
	}
}

func TestUserSessionsListAndRevoke(t *testing.T) {
	s := newTestServer(t, withFakeClock(durabletest.NewClock(sessionStart)))
	// Pick a second user in the same shard as "erin" (isolation by user, not
	// only by shard) and one in another shard.
	shardOf := func(u string) int { return session.UserShard(u, session.DefaultShards) }
	var same, other string
	for i := 0; same == "" || other == ""; i++ {
		u := fmt.Sprint("user-", i)
		switch {
		case shardOf(u) == shardOf("erin") && same == "":
			same = u
		case shardOf(u) != shardOf("erin") && other == "":
			other = u
		}
	}
	var ids []string
	for i := range 30 {
		c := s.createSession(t, map[string]any{"user_id": "erin", "ttl_ms": (i + 1) * 60_000})
		ids = append(ids, c.str(t, "id"))
		s.Clock.Advance(time.Millisecond)
	}
	sameID := s.createSession(t, map[string]any{"user_id": same}).str(t, "id")
	otherID := s.createSession(t, map[string]any{"user_id": other}).str(t, "id")

	l := s.do("GET", "/v1/users/erin/sessions", nil).expect(t, 200, "")
	list := l.JSON["sessions"].([]any)
	if len(list) != 30 {
		t.Fatalf("%d listed, want 30", len(list))
	}
	for i, v := range list {
		m := v.(map[string]any)
		if got := keys(m); !slices.Equal(got, []string{"created_at_ms", "expires_at_ms", "id"}) {
			t.Fatalf("list entry fields %v", got)
		}
		if m["id"] != ids[i] || int64(m["created_at_ms"].(float64)) != sessionStart.UnixMilli()+int64(i) ||
			int64(m["expires_at_ms"].(float64)) != sessionStart.UnixMilli()+int64(i)+int64(i+1)*60_000 {
			t.Fatalf("list[%d] = %v, want %s", i, m, ids[i])
		}
	}
	// Five expire: gone from the list and not counted as revoked.
	s.Clock.Set(sessionStart.Add(5*time.Minute + time.Second))
	if l := s.do("GET", "/v1/users/erin/sessions", nil).expect(t, 200, ""); len(l.JSON["sessions"].([]any)) != 25 {
		t.Fatalf("after 5 expired: %s", l.Body)
	}
	// A deleted one is not listed either.
	s.do("DELETE", "/v1/sessions/"+ids[29], nil).expect(t, 204, "")
	r := s.do("DELETE", "/v1/users/erin/sessions", nil).expect(t, 200, "")
	if got := keys(r.JSON); !slices.Equal(got, []string{"revoked"}) || r.num(t, "revoked") != 24 {
		t.Fatalf("revoke: %s, want 24", r.Body)
	}
	for _, id := range ids {
		s.do("GET", "/v1/sessions/"+id, nil).expect(t, 404, "not_found")
	}
	if l := s.do("GET", "/v1/users/erin/sessions", nil).expect(t, 200, ""); string(l.Body) != "{\"sessions\":[]}\n" {
		t.Fatalf("after revoke: %s", l.Body)
	}
	if r := s.do("DELETE", "/v1/users/erin/sessions", nil).expect(t, 200, ""); r.num(t, "revoked") != 0 {
		t.Fatalf("second revoke: %s", r.Body)
	}
	// The other users kept theirs.
	s.do("GET", "/v1/sessions/"+sameID, nil).expect(t, 200, "")
	s.do("GET", "/v1/sessions/"+otherID, nil).expect(t, 200, "")
	for _, u := range []string{same, other} {
		if l := s.do("GET", "/v1/users/"+u+"/sessions", nil).expect(t, 200, ""); len(l.JSON["sessions"].([]any)) != 1 {
			t.Fatalf("user %s: %s", u, l.Body)
		}
	}
	// A user with no sessions: an empty list, not null; nothing to revoke.
	if l := s.do("GET", "/v1/users/nobody/sessions", nil).expect(t, 200, ""); string(l.Body) != "{\"sessions\":[]}\n" {
		t.Fatalf("unknown user: %s", l.Body)
	}
	// A user ID with reserved characters, percent-encoded in the path.
	odd := "a/b c?d"
	s.createSession(t, map[string]any{"user_id": odd})
	if l := s.do("GET", "/v1/users/"+url.PathEscape(odd)+"/sessions", nil).expect(t, 200, ""); len(l.JSON["sessions"].([]any)) != 1 {
		t.Fatalf("escaped user: %s", l.Body)
	}
	if r := s.do("DELETE", "/v1/users/"+url.PathEscape(odd)+"/sessions", nil).expect(t, 200, ""); r.num(t, "revoked") != 1 {
		t.Fatalf("escaped user revoke: %s", r.Body)
	}
}

func TestSessionsSurviveRestart(t *testing.T) {
	clock := durabletest.NewClock(sessionStart)
	s := newTestServer(t, withFakeClock(clock))
	dir := s.Dir
	keep := s.createSession(t, `{"user_id": "frank", "data": {"n": 1}, "ttl_ms": 3600000}`)
	gone := s.createSession(t, `{"user_id": "frank", "ttl_ms": 60000}`)
	del := s.createSession(t, `{"user_id": "frank"}`)
	s.do("PATCH", "/v1/sessions/"+keep.str(t, "id"), `{"data": {"n": 2}}`).expect(t, 200, "")
	s.do("DELETE", "/v1/sessions/"+del.str(t, "id"), nil).expect(t, 204, "")
	s.Close()

	clock.Advance(2 * time.Minute) // "gone" expires while the server is down
	s = newTestServer(t, withFakeClock(clock), withRuntime(func(rt *durable.Runtime) { rt.Dir = dir }))
	g := s.do("GET", "/v1/sessions/"+keep.str(t, "id"), nil).expect(t, 200, "")
	if fmt.Sprint(g.JSON["data"]) != "map[n:2]" || g.num(t, "expires_at_ms") != keep.num(t, "expires_at_ms") || g.num(t, "created_at_ms") != sessionStart.UnixMilli() {
		t.Fatalf("after restart: %s", g.Body)
	}
	s.do("GET", "/v1/sessions/"+gone.str(t, "id"), nil).expect(t, 404, "not_found")
	s.do("GET", "/v1/sessions/"+del.str(t, "id"), nil).expect(t, 404, "not_found")
	l := s.do("GET", "/v1/users/frank/sessions", nil).expect(t, 200, "")
	if list := l.JSON["sessions"].([]any); len(list) != 1 || list[0].(map[string]any)["id"] != keep.str(t, "id") {
		t.Fatalf("list after restart: %s", l.Body)
	}
	// The alarm due during downtime fired at start and deleted the row.
	pollUntil(t, "the expired row to be deleted after restart", func() bool { return s.shardStats(t, keep.str(t, "id")).Rows == 1 })
}
