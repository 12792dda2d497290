package gateway

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/durableobjects/durable"
	"github.com/durableobjects/durable/patterns/dedup"
)

// upstream is a real HTTP server on loopback that counts and records the
// requests it gets.
type upstream struct {
	*httptest.Server
	hits atomic.Int64
	mu   sync.Mutex
	seen []string // request URIs, as sent
}

func newUpstream(t *testing.T, h http.HandlerFunc) *upstream {
	t.Helper()
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.hits.Add(1)
		u.mu.Lock()
		u.seen = append(u.seen, r.RequestURI)
		u.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) requests() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.seen...)
}

// gate is a barrier upstream handlers wait on until the test opens it (or
// the test ends).
type gate struct {
	ch   chan struct{}
	once sync.Once
}

func newGate(t *testing.T) *gate {
	g := &gate{ch: make(chan struct{})}
	t.Cleanup(g.open)
	return g
}

func (g *gate) open() { g.once.Do(func() { close(g.ch) }) }

func (g *gate) wait(r *http.Request) {
	select {
	case <-g.ch:
	case <-r.Context().Done():
	case <-time.After(30 * time.Second):
	}
}

func fetchServer(t *testing.T, upstreams map[string]string) *testServer {
	return newTestServer(t, withConfig(func(c *Config) { c.Upstreams = upstreams }))
}

// fetchResult is one raw answer of a fetch route.
type fetchResult struct {
	status int
	header http.Header
	body   []byte
	err    error
}

// noRedirects is a client that shows redirects instead of following them.
var noRedirects = &http.Client{
	Timeout:       90 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// get sends a GET without failing the test (for use from goroutines), and
// does not follow redirects.
func (s *testServer) get(ctx context.Context, path string) fetchResult {
	req, err := http.NewRequestWithContext(ctx, "GET", s.URL+path, nil)
	if err != nil {
		return fetchResult{err: err}
	}
	resp, err := noRedirects.Do(req)
	if err != nil {
		return fetchResult{err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return fetchResult{status: resp.StatusCode, header: resp.Header, body: body, err: err}
}

// waiting asks the object of a key how many callers wait on its upstream
// request; being an event of that object, it also shows the object is free.
func (s *testServer) waiting(t *testing.T, upstream, path, query string) int {
	t.Helper()
	ns, ok := s.RT.Namespace(dedup.Class)
	if !ok {
		t.Fatal("dedup class not registered")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n, err := durable.Call[int](ctx, ns.GetByName(dedup.ObjectName(upstream, path, query)), "Waiting", nil)
	if err != nil {
		t.Fatalf("Waiting: %v (is the object blocked?)", err)
	}
	return n
}

func TestFetchCoalescesConcurrentRequests(t *testing.T) {
	release := newGate(t)
	body := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		release.wait(r)
		h := w.Header()
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Cache-Control", "max-age=60")
		h.Add("X-Multi", "a")
		h.Add("X-Multi", "b")
		w.WriteHeader(203)
		w.Write(body)
	})
	s := fetchServer(t, map[string]string{"up": up.URL + "/api"})
	t.Cleanup(release.open) // before the server closes: its objects wait on the upstream

	const n = 16
	results := make(chan fetchResult, n)
	for range n {
		go func() { results <- s.get(context.Background(), "/v1/fetch/up/data?x=1") }()
	}
	// Every caller is in: the object took them all while the first one's
	// upstream request was (and still is) in flight.
	pollUntil(t, "all callers to wait on one upstream request", func() bool {
		if h := up.hits.Load(); h > 1 {
			t.Fatalf("upstream hit %d times by identical concurrent requests", h)
		}
		// The first caller's request may still be on its way upstream.
		return s.waiting(t, "up", "data", "x=1") == n && up.hits.Load() == 1
	})
	if got := up.hits.Load(); got != 1 {
		t.Fatalf("upstream hit %d times while requests were in flight, want 1", got)
	}
	release.open()
	for range n {
		r := <-results
		if r.err != nil {
			t.Fatal(r.err)
		}
		if r.status != 203 || !bytes.Equal(r.body, body) {
			t.Fatalf("status %d, %d bytes; want 203 and the whole body", r.status, len(r.body))
		}
		if r.header.Get("Content-Type") != "application/octet-stream" || r.header.Get("Cache-Control") != "max-age=60" ||
			strings.Join(r.header.Values("X-Multi"), ",") != "a,b" || r.header.Get("Content-Length") != fmt.Sprint(len(body)) {
			t.Fatalf("headers %v", r.header)
		}
		if r.header.Get("Durable-Dedup-Secret") != "" || r.header.Get("Durable-Dedup-Error") != "" {
			t.Fatalf("internal headers leaked: %v", r.header)
		}
	}
	if got := up.hits.Load(); got != 1 {
		t.Fatalf("upstream hit %d times, want 1", got)
	}
	if got := up.requests(); got[0] != "/api/data?x=1" {
		t.Fatalf("upstream got %v", got)
	}
	pollUntil(t, "the flight to be forgotten", func() bool { return s.waiting(t, "up", "data", "x=1") == 0 })

	// The dedup objects never write: no database file for them.
	var files []string
	filepath.WalkDir(filepath.Join(s.Dir, dedup.Class), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	if len(files) != 0 {
		t.Fatalf("dedup objects wrote files: %v", files)
	}
}

func TestFetchCallersLeavingDoNotCancelOthers(t *testing.T) {
	release := newGate(t)
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		release.wait(r)
		fmt.Fprint(w, "shared")
	})
	s := fetchServer(t, map[string]string{"up": up.URL})
	t.Cleanup(release.open) // before the server closes: its objects wait on the upstream
	// The first caller (whose event makes the upstream request) and a
	// follower both leave; a second follower still gets the answer.
	ctx1, cancel1 := context.WithCancel(context.Background())
	first := make(chan fetchResult, 1)
	go func() { first <- s.get(ctx1, "/v1/fetch/up/k") }()
	pollUntil(t, "the first caller", func() bool { return s.waiting(t, "up", "k", "") == 1 })
	ctx2, cancel2 := context.WithCancel(context.Background())
	second := make(chan fetchResult, 1)
	go func() { second <- s.get(ctx2, "/v1/fetch/up/k") }()
	pollUntil(t, "the second caller", func() bool { return s.waiting(t, "up", "k", "") == 2 })
	third := make(chan fetchResult, 1)
	go func() { third <- s.get(context.Background(), "/v1/fetch/up/k") }()
	pollUntil(t, "the third caller", func() bool { return s.waiting(t, "up", "k", "") == 3 })

	cancel1()
	cancel2()
	if r := <-first; r.err == nil {
		t.Fatalf("canceled request answered %d", r.status)
	}
	<-second
	// The follower that left is gone; the first caller's event still runs
	// the upstream request for the others.
	pollUntil(t, "the second caller to leave", func() bool { return s.waiting(t, "up", "k", "") == 2 })
	release.open()
	r := <-third
	if r.err != nil || r.status != 200 || string(r.body) != "shared" {
		t.Fatalf("third caller: %d %q %v", r.status, r.body, r.err)
	}
	if got := up.hits.Load(); got != 1 {
		t.Fatalf("upstream hit %d times, want 1", got)
	}
}

func TestFetchDifferentQueriesAreNotCoalesced(t *testing.T) {
	release := newGate(t)
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		release.wait(r)
		fmt.Fprint(w, r.URL.RawQuery)
	})
	s := fetchServer(t, map[string]string{"up": up.URL})
	t.Cleanup(release.open) // before the server closes: its objects wait on the upstream
	queries := []string{"a=1", "a=2", "a=1&b=2", "b=2&a=1", ""}
	results := make([]chan fetchResult, len(queries))
	for i, q := range queries {
		results[i] = make(chan fetchResult, 1)
		path := "/v1/fetch/up/x"
		if q != "" {
			path += "?" + q
		}
		go func() { results[i] <- s.get(context.Background(), path) }()
	}
	// Each query is its own upstream request: all are in flight at once.
	pollUntil(t, "one upstream request per query", func() bool { return up.hits.Load() == int64(len(queries)) })
	// Another path, same query: its own request too.
	other := make(chan fetchResult, 1)
	go func() { other <- s.get(context.Background(), "/v1/fetch/up/y?a=1") }()
	pollUntil(t, "the other path's request", func() bool { return up.hits.Load() == int64(len(queries))+1 })
	release.open()
	for i, q := range queries {
		if r := <-results[i]; r.err != nil || r.status != 200 || string(r.body) != q {
			t.Fatalf("query %q: %d %q %v", q, r.status, r.body, r.err)
		}
	}
	if r := <-other; string(r.body) != "a=1" {
		t.Fatalf("other path: %q", r.body)
	}
}

func TestFetchDoesNotCache(t *testing.T) {
	var n atomic.Int64
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "answer %d", n.Add(1)) })
	s := fetchServer(t, map[string]string{"up": up.URL})
	for i := 1; i <= 3; i++ {
		r := s.get(context.Background(), "/v1/fetch/up/same?q=1")
		if r.err != nil || string(r.body) != fmt.Sprintf("answer %d", i) {
			t.Fatalf("request %d: %q %v", i, r.body, r.err)
		}
	}
	if got := up.hits.Load(); got != 3 {
		t.Fatalf("upstream hit %d times for 3 sequential requests", got)
	}
}

func TestFetchForwardsStatus(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/404":
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(404)
			fmt.Fprint(w, "no such thing")
		case "/500":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(500)
			fmt.Fprint(w, `{"oops":true}`)
		case "/302":
			w.Header().Set("Location", "http://127.0.0.1:1/elsewhere")
			w.WriteHeader(302)
		case "/204":
			w.WriteHeader(204)
		case "/429":
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(429)
		case "/notype":
			w.Header()["Content-Type"] = nil
			w.Write([]byte("<html>not sniffed</html>"))
		}
	})
	s := fetchServer(t, map[string]string{"up": up.URL})
	for _, tc := range []struct {
		path, body string
		status     int
		header     [2]string
	}{
		{"404", "no such thing", 404, [2]string{"Content-Type", "text/plain"}},
		{"500", `{"oops":true}`, 500, [2]string{"Content-Type", "application/json"}},
		{"302", "", 302, [2]string{"Location", "http://127.0.0.1:1/elsewhere"}}, // not followed
		{"204", "", 204, [2]string{"Content-Type", ""}},
		{"429", "", 429, [2]string{"Retry-After", "7"}},
		{"notype", "<html>not sniffed</html>", 200, [2]string{"Content-Type", ""}},
	} {
		r := s.get(context.Background(), "/v1/fetch/up/"+tc.path)
		if r.err != nil || r.status != tc.status || string(r.body) != tc.body || r.header.Get(tc.header[0]) != tc.header[1] {
			t.Errorf("%s: %d %q %s=%q %v; want %d %q %q", tc.path, r.status, r.body, tc.header[0], r.header.Get(tc.header[0]), r.err, tc.status, tc.body, tc.header[1])
		}
	}
}

// rawUpstream answers every request with the given raw HTTP/1.1 response.
func rawUpstream(t *testing.T, response string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
					return
				}
				io.WriteString(c, strings.ReplaceAll(response, "\n", "\r\n"))
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

func TestFetchRemovesHopByHopHeaders(t *testing.T) {
	base := rawUpstream(t, `HTTP/1.1 200 OK
Content-Type: text/plain
Connection: X-Per-Hop, keep-alive
X-Per-Hop: private
Keep-Alive: timeout=5
Proxy-Authenticate: Basic
Proxy-Connection: keep-alive
Proxy-Foo: bar
TE: trailers
Upgrade: h2c
X-End-To-End: kept
Set-Cookie: a=1
Set-Cookie: b=2
Content-Length: 5

hello`)
	s := fetchServer(t, map[string]string{"raw": base})
	r := s.get(context.Background(), "/v1/fetch/raw/x")
	if r.err != nil || r.status != 200 || string(r.body) != "hello" {
		t.Fatalf("%d %q %v", r.status, r.body, r.err)
	}
	for _, h := range []string{"X-Per-Hop", "Keep-Alive", "Proxy-Authenticate", "Proxy-Connection", "Proxy-Foo", "Te", "Upgrade", "Trailer", "Transfer-Encoding"} {
		if v := r.header.Values(h); len(v) > 0 {
			t.Errorf("hop-by-hop header %s forwarded: %q", h, v)
		}
	}
	if c := r.header.Get("Connection"); c != "" {
		t.Errorf("Connection forwarded: %q", c)
	}
	if r.header.Get("X-End-To-End") != "kept" || strings.Join(r.header.Values("Set-Cookie"), ";") != "a=1;b=2" || r.header.Get("Content-Type") != "text/plain" {
		t.Errorf("end-to-end headers: %v", r.header)
	}
}

func TestFetchErrors(t *testing.T) {
	// A port with nothing listening.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	broken := rawUpstream(t, "HTTP/1.1 200 OK\nContent-Length: 100\n\nshort") // body cut short
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })
	s := fetchServer(t, map[string]string{"dead": dead, "broken": broken, "up": up.URL})

	s.do("GET", "/v1/fetch/nope/x", nil).expect(t, 404, "not_found")
	s.do("GET", "/v1/fetch/nope", nil).expect(t, 404, "not_found")
	s.do("GET", "/v1/fetch/nope/", nil).expect(t, 404, "not_found")
	s.do("GET", "/v1/fetch/dead/x", nil).expect(t, 502, "bad_gateway")
	s.do("GET", "/v1/fetch/broken/x", nil).expect(t, 502, "bad_gateway")
	s.do("GET", "/v1/fetch/"+strings.Repeat("u", 257)+"/x", nil).expect(t, 400, "invalid_argument")
	s.do("GET", "/v1/fetch/u%01p/x", nil).expect(t, 400, "invalid_argument")
	for _, m := range []string{"POST", "PUT", "DELETE", "PATCH"} {
		r := s.do(m, "/v1/fetch/up/x", nil).expect(t, 405, "method_not_allowed")
		if !strings.Contains(r.Header.Get("Allow"), "GET") {
			t.Errorf("%s: Allow %q", m, r.Header.Get("Allow"))
		}
	}
	if r := s.get(context.Background(), "/v1/fetch/up/x"); r.status != 200 || string(r.body) != "ok" {
		t.Fatalf("%d %q %v", r.status, r.body, r.err)
	}
	if got := up.hits.Load(); got != 1 {
		t.Fatalf("upstream hit %d times", got)
	}
}

func TestFetchBodyLimit(t *testing.T) {
	const limit = 32 << 20
	chunk := bytes.Repeat([]byte("x"), 1<<20)
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		var n int
		fmt.Sscan(r.URL.Query().Get("n"), &n)
		if r.URL.Query().Get("chunked") == "" {
			w.Header().Set("Content-Length", fmt.Sprint(n))
		}
		for n > 0 {
			k := min(n, len(chunk))
			if _, err := w.Write(chunk[:k]); err != nil {
				return
			}
			n -= k
			if f, ok := w.(http.Flusher); ok && r.URL.Query().Get("chunked") != "" {
				f.Flush()
			}
		}
	})
	s := fetchServer(t, map[string]string{"up": up.URL})
	// Exactly 32 MiB passes whole; one byte more is refused, whether the
	// upstream announces its length (refused before reading) or not (refused
	// once the 32 MiB + 1st byte arrives).
	r := s.get(context.Background(), fmt.Sprintf("/v1/fetch/up/big?n=%d", limit))
	if r.err != nil || r.status != 200 || len(r.body) != limit || r.header.Get("Content-Length") != fmt.Sprint(limit) {
		t.Fatalf("exactly 32 MiB: %d, %d bytes, %v", r.status, len(r.body), r.err)
	}
	s.do("GET", fmt.Sprintf("/v1/fetch/up/big?n=%d", limit+1), nil).expect(t, 502, "bad_gateway")
	s.do("GET", fmt.Sprintf("/v1/fetch/up/big?n=%d&chunked=1", limit+1), nil).expect(t, 502, "bad_gateway")
	r = s.get(context.Background(), "/v1/fetch/up/big?n=1000&chunked=1")
	if r.status != 200 || len(r.body) != 1000 {
		t.Fatalf("small chunked body: %d, %d bytes", r.status, len(r.body))
	}
}

func TestFetchJoinsBasePath(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, r.RequestURI) })
	for _, tc := range []struct{ base, req, want string }{
		{"/api", "/v1/fetch/up/x", "/api/x"},
		{"/api/", "/v1/fetch/up/x", "/api/x"},
		{"", "/v1/fetch/up/x", "/x"},
		{"/", "/v1/fetch/up/x", "/x"},
		{"/api", "/v1/fetch/up/x/y/?q=1&q=2", "/api/x/y/?q=1&q=2"},
		{"/api/", "/v1/fetch/up/", "/api/"},
		{"/api", "/v1/fetch/up", "/api/"},
		{"/a%20b", "/v1/fetch/up/a%2Fb", "/a%20b/a%2Fb"},
		{"/api", "/v1/fetch/up/caf%C3%A9%20x?k=%20v", "/api/caf%C3%A9%20x?k=%20v"},
		{"/api", "/v1/fetch/up/http:%2F%2Fevil.example%2Fx", "/api/http:%2F%2Fevil.example%2Fx"},
		{"/api", "/v1/fetch/up/...x/.hidden", "/api/...x/.hidden"},
	} {
		t.Run(tc.base+" "+tc.req, func(t *testing.T) {
			s := fetchServer(t, map[string]string{"up": up.URL + tc.base})
			r := s.get(context.Background(), tc.req)
			if r.err != nil || r.status != 200 || string(r.body) != tc.want {
				t.Fatalf("upstream got %q (%d, %v), want %q", r.body, r.status, r.err, tc.want)
			}
		})
	}
}

func TestFetchIsNoOpenProxy(t *testing.T) {
	evil := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "evil") })
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/secret") {
			fmt.Fprint(w, "SECRET")
			return
		}
		fmt.Fprint(w, "public "+r.RequestURI)
	})
	s := fetchServer(t, map[string]string{"up": up.URL + "/public"})
	evilHost := strings.TrimPrefix(evil.URL, "http://")
	// Dot segments, however encoded, are refused before any upstream request.
	for _, p := range []string{
		"..%2Fsecret", "x/..%2F..%2Fsecret", "%2E%2E/secret", "%2e%2e%2fsecret", "..%5Csecret",
		".%2Fx", "x/%2E",
	} {
		s.do("GET", "/v1/fetch/up/"+p, nil).expect(t, 400, "invalid_argument")
	}
	if n := up.hits.Load(); n != 0 {
		t.Fatalf("dot segments reached the upstream: %v", up.requests())
	}
	// Absolute URLs and host-looking paths stay on the upstream's host,
	// under its base path (literal ".." is cleaned by the router first).
	for _, p := range []string{
		"http://" + evilHost + "/x", "http:%2F%2F" + evilHost + "%2Fx", "//" + evilHost + "/x",
		"@" + evilHost + "/x", "../secret", "x/../../secret",
	} {
		r := s.get(context.Background(), "/v1/fetch/up/"+p)
		if r.err != nil || bytes.Contains(r.body, []byte("SECRET")) || bytes.Contains(r.body, []byte("evil")) {
			t.Fatalf("%s: %d %q %v", p, r.status, r.body, r.err)
		}
	}
	if n := evil.hits.Load(); n != 0 {
		t.Fatalf("the open-proxy target was reached %d times", n)
	}
	for _, got := range up.requests() {
		if !strings.HasPrefix(got, "/public/") {
			t.Fatalf("upstream request %q escaped the base path", got)
		}
	}
	// Nothing outside the Client reaches an object's fetch: an object called
	// directly, without the Client's secret, answers 404 and fetches nothing.
	ns, _ := s.RT.Namespace(dedup.Class)
	req, _ := http.NewRequest("GET", evil.URL+"/direct", nil)
	resp, err := ns.GetByName("anything").Fetch(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 404 || evil.hits.Load() != 0 {
		t.Fatalf("direct fetch: %d, evil hits %d", resp.StatusCode, evil.hits.Load())
	}
}
