package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	pathpkg "path"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/durableobjects/durable"
)

// Hostile input: fuzz targets drive the real gateway (a runtime with every
// built-in class, in a temporary directory) through its http.Handler with
// every route's JSON body and with arbitrary path parameters, and check
// what api.md promises whatever the input: never a 500 or a panic (the
// handler recovers panics as 500s), and every error is the api.md error
// JSON, with Content-Type application/json, a code that matches its
// status, and no Go type names, stack traces or file paths in it.
//
// Run one with, for example:
//
//	go test -run '^$' -fuzz '^FuzzRateLimitCheck$' -fuzztime 45s ./gateway/
//
// The seed corpora are in testdata/fuzz/<target>/ (and the f.Add calls).

// fuzzGateway is a gateway for one fuzz target in one process. Its data
// directory is on /dev/shm when there is one: the durability barrier's
// syncfs costs nothing there, so the fuzzer runs faster.
type fuzzGateway struct {
	g       *Gateway
	dir     string
	session string // an existing session's ID, for PATCH
}

func newFuzzGateway(f *testing.F) *fuzzGateway {
	f.Helper()
	dir := ""
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if d, err := os.MkdirTemp("/dev/shm", "durable-fuzz-"); err == nil {
			dir = d
			f.Cleanup(func() { os.RemoveAll(d) })
		}
	}
	if dir == "" {
		dir = f.TempDir()
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"ok":true}`))
	})
	hook := httptest.NewServer(ok)
	f.Cleanup(hook.Close)
	upstream := httptest.NewServer(ok)
	f.Cleanup(upstream.Close)

	rt := durable.NewRuntime(dir)
	g, err := New(rt, Config{
		Webhooks:  map[string]string{"hook": hook.URL},
		Upstreams: map[string]string{"up": upstream.URL + "/base"},
	})
	if err != nil {
		f.Fatal(err)
	}
	if err := rt.Open(); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		g.BeginShutdown()
		g.Close(ctx)
		rt.Close(ctx)
	})
	fg := &fuzzGateway{g: g, dir: dir}
	rec := httptest.NewRecorder()
	g.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/sessions", strings.NewReader(`{"user_id":"fuzz"}`)))
	var s struct{ ID string }
	if rec.Code != http.StatusCreated || json.Unmarshal(rec.Body.Bytes(), &s) != nil {
		f.Fatalf("create session: %d %s", rec.Code, rec.Body)
	}
	fg.session = s.ID
	return fg
}

// serve sends one request and checks the answer; it returns it.
func (fg *fuzzGateway) serve(t *testing.T, method, target string, body []byte) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, bytes.NewReader(body))
	ctx, cancel := context.WithTimeout(req.Context(), time.Minute)
	defer cancel()
	req = req.WithContext(ctx)
	rec := httptest.NewRecorder()
	fg.g.ServeHTTP(rec, req)
	fg.check(t, method+" "+target, body, rec)
	return rec
}

// errorStatus is the status each api.md error code goes with.
var errorStatus = map[string]int{
	"invalid_argument":   400,
	"unauthorized":       401,
	"not_found":          404,
	"method_not_allowed": 405,
	"lock_held":          409,
	"not_owner":          409,
	"conflict":           409,
	"payload_too_large":  413,
	"rate_limited":       429,
	"bad_gateway":        502,
	"overloaded":         503,
	"unavailable":        503,
}

// leaks are what an error message must not show: Go type names, stack
// traces, file paths, encoder internals.
var leaks = regexp.MustCompile(`\.go:\d|goroutine \d|runtime/|runtime\.|reflect\.|panic|\*?(gateway|durable|lock|session|scheduler|ratelimit|collab|dedup|main|json|sqlite3)\.[A-Z]|Go (struct|value)|of type |\bu?int(8|16|32|64)\b|float64|\[\]byte|map\[|struct \{|json: |/tmp/|/dev/shm/|\.sqlite`)

// quoted matches Go-quoted strings, which echo the client's own input
// (an unknown field's name, say) and are not checked for leaks.
var quoted = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)

func (fg *fuzzGateway) check(t *testing.T, what string, body []byte, rec *httptest.ResponseRecorder) {
	t.Helper()
	code, ct, out := rec.Code, rec.Header().Get("Content-Type"), rec.Body.Bytes()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("%s with body %q: %d %q: %s", what, body, code, out, fmt.Sprintf(format, args...))
	}
	if code >= 500 && code != http.StatusBadGateway && code != http.StatusServiceUnavailable {
		fail("a server error")
	}
	if bytes.Contains(out, []byte(fg.dir)) {
		fail("the answer names the data directory")
	}
	if code >= 300 && code < 400 {
		// ServeMux redirects a path with an empty, "." or ".." segment to
		// its clean form (before any route runs); nothing else redirects.
		if path, _, _ := strings.Cut(strings.TrimPrefix(what, strings.Split(what, " ")[0]+" "), "?"); path == cleanPath(path) {
			fail("a redirect")
		}
		return
	}
	if code < 400 {
		if len(out) > 0 && code != http.StatusNoContent && !strings.HasPrefix(ct, "application/json") &&
			!strings.HasPrefix(what, "GET /v1/fetch/") {
			fail("Content-Type %q", ct)
		}
		return
	}
	if !strings.HasPrefix(ct, "application/json") {
		fail("an error with Content-Type %q", ct)
	}
	var e struct {
		Error *struct {
			Code    *string `json:"code"`
			Message *string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(out, &e); err != nil || e.Error == nil || e.Error.Code == nil || e.Error.Message == nil {
		fail("not the api.md error JSON")
	}
	if want, ok := errorStatus[*e.Error.Code]; !ok || want != code {
		fail("error code %q with status %d", *e.Error.Code, code)
	}
	msg := quoted.ReplaceAllString(*e.Error.Message, `""`)
	if m := leaks.FindString(msg); m != "" {
		fail("the message shows %q", m)
	}
	if code == http.StatusServiceUnavailable && rec.Header().Get("Retry-After") == "" {
		fail("503 without Retry-After")
	}
}

// Seeds shared by the body targets: JSON that is broken in the usual ways.
var bodySeeds = []string{
	``, ` `, `{}`, `null`, `[]`, `"x"`, `1`, `{`, `{"a":1}`, `{} {}`, `{}x`, "\xff", `{"limit":}`,
	`{"limit":1e400}`, `{"limit":-1}`, `{"limit":"1"}`, `{"limit":1.5}`, `{"\u0000":1}`,
	`{"limit":1,"limit":2}`, strings.Repeat(`[`, 10000),
}

func addSeeds(f *testing.F, seeds ...string) {
	for _, s := range append(seeds, bodySeeds...) {
		f.Add([]byte(s))
	}
}

func FuzzRateLimitCheck(f *testing.F) {
	addSeeds(f, `{"limit":10,"window_ms":1000}`, `{"limit":10,"window_ms":1000,"cost":3,"algorithm":"token_bucket"}`,
		`{"limit":1000000000,"window_ms":2592000000,"cost":1000000000,"algorithm":"sliding_log"}`,
		`{"limit":0,"window_ms":1000}`, `{"limit":10,"window_ms":0}`, `{"limit":10,"window_ms":1000,"cost":11}`,
		`{"limit":10,"window_ms":1000,"algorithm":"leaky"}`, `{"limit":9223372036854775807,"window_ms":9223372036854775807}`)
	fg := newFuzzGateway(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		fg.serve(t, "POST", "/v1/ratelimit/fuzz/check", body)
	})
}

func FuzzLockAcquire(f *testing.F) {
	addSeeds(f, `{"ttl_ms":1000}`, `{"ttl_ms":1,"wait_ms":0,"owner":"me"}`, `{"ttl_ms":3600000,"wait_ms":60000}`,
		`{"ttl_ms":0}`, `{"wait_ms":-1}`, `{"owner":null}`, `{"owner":"`+strings.Repeat("o", 300)+`"}`)
	fg := newFuzzGateway(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := fg.serve(t, "POST", "/v1/locks/fuzz/acquire", body)
		if rec.Code == http.StatusOK {
			// Free the lock again, so no later input waits for it (a
			// grant with a tiny TTL may have expired already).
			var g struct{ Token string }
			json.Unmarshal(rec.Body.Bytes(), &g)
			rel, _ := json.Marshal(map[string]string{"token": g.Token})
			if r := fg.serve(t, "POST", "/v1/locks/fuzz/release", rel); r.Code != http.StatusOK && r.Code != http.StatusConflict {
				t.Fatalf("release after acquire %q: %d %s", body, r.Code, r.Body)
			}
		}
	})
}

func FuzzLockRenew(f *testing.F) {
	addSeeds(f, `{"token":"AAAAAAAAAAAAAAAAAAAAAA"}`, `{"token":"x","ttl_ms":1000}`, `{"token":""}`, `{"token":null}`,
		`{"ttl_ms":1000}`, `{"token":1}`)
	fg := newFuzzGateway(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		fg.serve(t, "POST", "/v1/locks/fuzz/renew", body)
	})
}

func FuzzLockRelease(f *testing.F) {
	addSeeds(f, `{"token":"AAAAAAAAAAAAAAAAAAAAAA"}`, `{"token":""}`, `{"token":["x"]}`, `{"token":"x","ttl_ms":1}`)
	fg := newFuzzGateway(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		fg.serve(t, "POST", "/v1/locks/fuzz/release", body)
	})
}

func FuzzSessionCreate(f *testing.F) {
	addSeeds(f, `{"user_id":"u"}`, `{"user_id":"u","data":{"a":[1,2]},"ttl_ms":1000}`, `{"user_id":"u","data":null}`,
		`{"user_id":""}`, `{"user_id":"a\u0000b"}`, `{"user_id":"u","ttl_ms":999}`, `{"user_id":"u","ttl_ms":31536000001}`,
		`{"user_id":"u","data":"`+strings.Repeat("d", 70000)+`"}`, `{"user_id":"\ud800"}`)
	fg := newFuzzGateway(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		fg.serve(t, "POST", "/v1/sessions", body)
	})
}

func FuzzSessionPatch(f *testing.F) {
	addSeeds(f, `{"data":{"x":1}}`, `{"data":null}`, `{"ttl_ms":5000}`, `{"data":1,"ttl_ms":1000}`, `{"ttl_ms":null}`,
		`{"user_id":"u"}`)
	fg := newFuzzGateway(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		fg.serve(t, "PATCH", "/v1/sessions/"+fg.session, body)
	})
}

func FuzzSchedulerPut(f *testing.F) {
	addSeeds(f, `{"run_at_ms":4102444800000,"target":"hook"}`, `{"run_at_ms":4102444800000,"repeat_ms":1000,"target":"hook","payload":{"a":1}}`,
		`{"run_at_ms":1,"target":"hook"}`, `{"run_at_ms":4102444800000,"target":"nope"}`, `{"run_at_ms":4102444800000,"repeat_ms":999,"target":"hook"}`,
		`{"run_at_ms":-9223372036854775808,"target":"hook"}`, `{"run_at_ms":9223372036854775807,"repeat_ms":9223372036854775807,"target":"hook"}`,
		`{"target":"hook"}`, `{"run_at_ms":1}`, `{"run_at_ms":4102444800000,"target":"hook","payload":"`+strings.Repeat("p", 70000)+`"}`)
	fg := newFuzzGateway(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		fg.serve(t, "PUT", "/v1/schedulers/fuzz/events/e", body)
	})
}

func FuzzSchedulerList(f *testing.F) {
	for _, q := range []string{"", "limit=1", "limit=1000", "limit=0", "limit=1001", "limit=x", "limit=1&limit=2",
		"cursor=", "cursor=abc", "cursor=%zz", "limit=5&cursor=AAAA", ";", "a=%"} {
		f.Add(q)
	}
	fg := newFuzzGateway(f)
	for i := range 3 {
		rec := httptest.NewRecorder()
		fg.g.ServeHTTP(rec, httptest.NewRequest("PUT", fmt.Sprintf("/v1/schedulers/fuzz/events/e%d", i),
			strings.NewReader(`{"run_at_ms":4102444800000,"target":"hook"}`)))
		if rec.Code != http.StatusOK {
			f.Fatalf("put event: %d %s", rec.Code, rec.Body)
		}
	}
	f.Fuzz(func(t *testing.T, query string) {
		if strings.ContainsAny(query, " #\r\n\x00") || !validTarget("/v1/schedulers/fuzz/events?"+query) {
			return // not a request line a client can send
		}
		rec := fg.serve(t, "GET", "/v1/schedulers/fuzz/events?"+query, nil)
		// A cursor the server made leads to the next page.
		var page struct {
			NextCursor *string `json:"next_cursor"`
		}
		if rec.Code == http.StatusOK && json.Unmarshal(rec.Body.Bytes(), &page) == nil && page.NextCursor != nil {
			fg.serve(t, "GET", "/v1/schedulers/fuzz/events?limit=1&cursor="+urlQueryEscape(*page.NextCursor), nil)
		}
	})
}

func FuzzDocPut(f *testing.F) {
	addSeeds(f, `{"content":"hello"}`, `{"content":"x","base_version":0}`, `{"content":"x","base_version":null}`,
		`{"content":"x","base_version":-1}`, `{"content":null}`, `{"content":1}`, `{"base_version":1}`)
	fg := newFuzzGateway(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		fg.serve(t, "PUT", "/v1/docs/fuzz", body)
	})
}

// pathRoutes are the routes with path parameters; {} marks each one, and
// the body is a valid one so the parameter is what is tested.
var pathRoutes = []struct{ method, path, body string }{
	{"POST", "/v1/ratelimit/{}/check", `{"limit":5,"window_ms":1000}`},
	{"POST", "/v1/locks/{}/acquire", `{"ttl_ms":1}`},
	{"POST", "/v1/locks/{}/renew", `{"token":"x"}`},
	{"POST", "/v1/locks/{}/release", `{"token":"x"}`},
	{"GET", "/v1/locks/{}", ``},
	{"GET", "/v1/sessions/{}", ``},
	{"PATCH", "/v1/sessions/{}", `{}`},
	{"DELETE", "/v1/sessions/{}", ``},
	{"GET", "/v1/users/{}/sessions", ``},
	{"DELETE", "/v1/users/{}/sessions", ``},
	{"PUT", "/v1/schedulers/{}/events/{}", `{"run_at_ms":4102444800000,"target":"hook"}`},
	{"GET", "/v1/schedulers/{}/events/{}", ``},
	{"DELETE", "/v1/schedulers/{}/events/{}", ``},
	{"GET", "/v1/schedulers/{}/events", ``},
	{"GET", "/v1/docs/{}", ``},
	{"PUT", "/v1/docs/{}", `{"content":"x"}`},
	{"GET", "/v1/fetch/{}/x", ``},
	{"GET", "/v1/fetch/up/{}", ``},
	{"POST", "/v1/objects/{}/{}/x", `{}`},
	{"GET", "/v1/objects/{}/id/{}/x", ``},
}

// FuzzPathParams puts arbitrary bytes, percent-encoded (every byte, or
// only where a path needs it), into each route's parameters.
func FuzzPathParams(f *testing.F) {
	for i := range pathRoutes {
		for _, p := range []string{"a", "日本", strings.Repeat("x", 256), strings.Repeat("x", 257), "", ".", "..", "a/b",
			"a\x00b", "\xff", "a b", "%", "?", "#", "\u0085", "\u2028"} {
			f.Add(uint8(i), p, true)
			f.Add(uint8(i), p, false)
		}
	}
	fg := newFuzzGateway(f)
	f.Fuzz(func(t *testing.T, route uint8, param string, all bool) {
		r := pathRoutes[int(route)%len(pathRoutes)]
		enc := escapePath(param, all)
		target := strings.ReplaceAll(r.path, "{}", enc)
		if !validTarget(target) {
			return
		}
		var body []byte
		if r.body != "" {
			body = []byte(r.body)
		}
		rec := fg.serve(t, r.method, target, body)
		// A parameter api.md refuses is a 400; a redirect (ServeMux
		// cleaning a path) or a 404 is also no harm.
		if checkParam("p", param) != nil && rec.Code < 300 && !strings.HasPrefix(r.path, "/v1/fetch/up/") {
			t.Fatalf("%s %s: parameter %q accepted: %d %s", r.method, target, param, rec.Code, rec.Body)
		}
	})
}

// escapePath percent-encodes s for a path: every byte if all, else only
// the bytes a path segment cannot hold.
func escapePath(s string, all bool) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !all && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~!$&'()*+,;=:@", c) >= 0) {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

func urlQueryEscape(s string) string { return escapePath(s, true) }

// cleanPath is path with empty, "." and ".." segments resolved, as
// ServeMux cleans it.
func cleanPath(p string) string {
	c := pathpkg.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}

// validTarget reports whether target is a request target httptest accepts
// (a client could send it).
func validTarget(target string) bool {
	req, err := http.ReadRequest(bufio.NewReader(strings.NewReader("GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n")))
	return err == nil && req != nil
}
