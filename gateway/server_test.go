package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/durableobjects/durable"
	"github.com/durableobjects/durable/durabletest"
)

// testServer is a real gateway on a real runtime, served over loopback.
type testServer struct {
	t      *testing.T
	URL    string
	RT     *durable.Runtime
	G      *Gateway
	Clock  *durabletest.Clock // nil unless withFakeClock
	Dir    string
	srv    *http.Server
	client *http.Client
}

type serverOption func(*durable.Runtime, *Config)

// withFakeClock runs the runtime on a clock the test moves.
func withFakeClock(c *durabletest.Clock) serverOption {
	return func(rt *durable.Runtime, _ *Config) { rt.Clock = c }
}

func withConfig(f func(*Config)) serverOption {
	return func(_ *durable.Runtime, c *Config) { f(c) }
}

func withRuntime(f func(*durable.Runtime)) serverOption {
	return func(rt *durable.Runtime, _ *Config) { f(rt) }
}

// newTestServer starts a gateway in a new data directory (or dir, if the
// options set rt.Dir) and stops it when the test ends.
func newTestServer(t *testing.T, opts ...serverOption) *testServer {
	t.Helper()
	rt := durable.NewRuntime(t.TempDir())
	rt.StubRetry = durable.Retry{Attempts: 1} // as durable serve runs it
	cfg := Config{}
	for _, o := range opts {
		o(rt, &cfg)
	}
	g, err := New(rt, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Open(); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &testServer{t: t, URL: "http://" + ln.Addr().String(), RT: rt, G: g, Dir: rt.Dir,
		srv: &http.Server{Handler: g, ReadHeaderTimeout: 10 * time.Second}, client: &http.Client{Timeout: 90 * time.Second}}
	if c, ok := rt.Clock.(*durabletest.Clock); ok {
		s.Clock = c
	}
	go s.srv.Serve(ln)
	t.Cleanup(s.Close)
	return s
}

// Close shuts the server down the way `durable serve` does.
func (s *testServer) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s.G.BeginShutdown()
	s.srv.Shutdown(ctx)
	s.G.Close(ctx)
	if err := s.RT.Close(ctx); err != nil {
		s.t.Errorf("runtime close: %v", err)
	}
}

// response is an HTTP answer with its body decoded when it is JSON.
type response struct {
	Status int
	Header http.Header
	Body   []byte
	JSON   map[string]any
}

// do sends a request. body is sent as is if it is a string or []byte,
// JSON-encoded otherwise (nil sends no body).
func (s *testServer) do(method, path string, body any, header ...string) *response {
	s.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			s.t.Fatal(err)
		}
		rd = bytes.NewReader(enc)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := s.client.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out := &response{Status: resp.StatusCode, Header: resp.Header}
	out.Body, _ = io.ReadAll(resp.Body)
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") && len(out.Body) > 0 {
		if err := json.Unmarshal(out.Body, &out.JSON); err != nil {
			s.t.Fatalf("%s %s: bad JSON %q: %v", method, path, out.Body, err)
		}
	}
	return out
}

// expectStatus fails the test unless the answer has status (and, for
// errors, the error code).
func (r *response) expect(t *testing.T, status int, code string) *response {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d; body %s", r.Status, status, r.Body)
	}
	if code != "" {
		if got := r.errorCode(); got != code {
			t.Fatalf("error code %q, want %q; body %s", got, code, r.Body)
		}
	}
	if len(r.Body) > 0 && r.Status != http.StatusNoContent && !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("Content-Type %q, want application/json", r.Header.Get("Content-Type"))
	}
	return r
}

func (r *response) errorCode() string {
	e, _ := r.JSON["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

// num returns a JSON number field as int64.
func (r *response) num(t *testing.T, field string) int64 {
	t.Helper()
	v, ok := r.JSON[field].(float64)
	if !ok {
		t.Fatalf("field %q is %v (%T), want a number; body %s", field, r.JSON[field], r.JSON[field], r.Body)
	}
	return int64(v)
}

func (r *response) str(t *testing.T, field string) string {
	t.Helper()
	v, ok := r.JSON[field].(string)
	if !ok {
		t.Fatalf("field %q is %v, want a string; body %s", field, r.JSON[field], r.Body)
	}
	return v
}

func TestHealthzAndMetrics(t *testing.T) {
	s := newTestServer(t, withConfig(func(c *Config) { c.Token = "secret" }))
	r := s.do("GET", "/healthz", nil).expect(t, 200, "")
	if r.JSON["status"] != "ok" {
		t.Fatalf("healthz body %s", r.Body)
	}
	m := s.do("GET", "/metrics", nil)
	if m.Status != 200 || !bytes.Contains(m.Body, []byte("durable_http_requests_total")) || !bytes.Contains(m.Body, []byte("durable_objects_active")) {
		t.Fatalf("metrics: %d %s", m.Status, m.Body)
	}
	// GET only (api.md): HEAD too is 405.
	for _, p := range []string{"/healthz", "/metrics"} {
		for _, m := range []string{"POST", "HEAD", "DELETE"} {
			r := s.do(m, p, nil)
			if r.Status != 405 || r.Header.Get("Allow") != "GET" {
				t.Fatalf("%s %s: %d, Allow %q; want 405, Allow GET", m, p, r.Status, r.Header.Get("Allow"))
			}
		}
	}
}

func TestUnknownRouteAndMethod(t *testing.T) {
	s := newTestServer(t)
	s.do("GET", "/v1/nothing-here", nil).expect(t, 404, "not_found")
	s.do("GET", "/", nil).expect(t, 404, "not_found")
}

func TestAuthComesBeforeRouting(t *testing.T) {
	s := newTestServer(t, withConfig(func(c *Config) { c.Token = "s3cret" }))
	s.do("GET", "/v1/nothing-here", nil).expect(t, 401, "unauthorized")
	s.do("GET", "/v1/nothing-here", nil, "Authorization", "Bearer wrong").expect(t, 401, "unauthorized")
	s.do("GET", "/v1/nothing-here", nil, "Authorization", "Bearer s3cret").expect(t, 404, "not_found")
	s.do("GET", "/healthz", nil).expect(t, 200, "")
	// /v1 itself is a /v1 request, and so is any path that cleans to one.
	s.do("GET", "/v1", nil).expect(t, 401, "unauthorized")
	addr := strings.TrimPrefix(s.URL, "http://")
	for _, target := range []string{"//v1/locks/a", "/./v1/locks/a", "/x/../v1"} {
		if resp, body := rawRoundTrip(t, addr, "GET "+target+" HTTP/1.1\r\nHost: x\r\n\r\n"); resp.StatusCode != 401 {
			t.Errorf("GET %s without the token: %d %s, want 401", target, resp.StatusCode, body)
		}
	}
	s.do("GET", "/v1", nil, "Authorization", "Bearer s3cret").expect(t, 404, "not_found")
}

// A path that ends where its last parameter should be has an empty
// parameter: 400, as in the middle of a path, not 404.
func TestEmptyLastParameter(t *testing.T) {
	s := newTestServer(t)
	for _, c := range []struct{ method, path string }{
		{"DELETE", "/v1/sessions/"}, {"GET", "/v1/sessions/"}, {"PATCH", "/v1/sessions/"},
		{"POST", "/v1/locks/"}, {"GET", "/v1/locks/"},
		{"GET", "/v1/docs/"}, {"GET", "/v1/schedulers/s/events/"},
	} {
		s.do(c.method, c.path, nil).expect(t, 400, "invalid_argument")
	}
	// No route at all stays 404.
	s.do("GET", "/v1/nothing/", nil).expect(t, 404, "not_found")
	s.do("GET", "/nothing/", nil).expect(t, 404, "not_found")
}

func TestRequestIDs(t *testing.T) {
	s := newTestServer(t)
	r := s.do("GET", "/healthz", nil)
	if id := r.Header.Get("X-Request-Id"); len(id) != 22 || !validRequestID(id) || strings.ContainsAny(id, "+/=.") {
		t.Fatalf("made request ID %q: want 22 characters of base64url (api.md)", id)
	}
	r = s.do("GET", "/healthz", nil, "X-Request-Id", "client-chosen-1")
	if got := r.Header.Get("X-Request-Id"); got != "client-chosen-1" {
		t.Fatalf("client request ID not echoed: %q", got)
	}
	r = s.do("GET", "/healthz", nil, "X-Request-Id", "bad id with spaces")
	if got := r.Header.Get("X-Request-Id"); got == "bad id with spaces" {
		t.Fatal("unsafe request ID echoed")
	}
}

func TestDecodeBody(t *testing.T) {
	type req struct {
		A *int64  `json:"a"`
		B *string `json:"b"`
	}
	for _, tc := range []struct {
		body string
		ok   bool
	}{
		{``, true},
		{`  `, true},
		{`{}`, true},
		{`{"a": 1, "b": "x"}`, true},
		{`{"a": 1.5}`, false},
		{`{"a": "1"}`, false},
		{`{"c": 1}`, false},
		{`{"a": 1} {}`, false},
		{`{"a": 1`, false},
		{`[1]`, false},
		{`null`, false},
		{`"x"`, false},
		{`{"A": 1}`, false},
		{`{"a": 1, "a": 2}`, false},
		{`{"a": 1, "B": "x"}`, false},
	} {
		var r req
		err := decodeBody([]byte(tc.body), &r)
		if (err == nil) != tc.ok {
			t.Errorf("decode %q: err = %v, want ok=%v", tc.body, err, tc.ok)
		}
	}
}

func TestCheckParam(t *testing.T) {
	for _, tc := range []struct {
		v  string
		ok bool
	}{
		{"a", true},
		{"日本", true},
		{strings.Repeat("x", 256), true},
		{strings.Repeat("x", 257), false},
		{"", false},
		{"a\x00b", false},
		{"a\nb", false},
		{"a\x7fb", false},
		{"a\u0085b", false},
		{"\xff", false},
	} {
		if err := checkParam("p", tc.v); (err == nil) != tc.ok {
			t.Errorf("checkParam(%q) = %v, want ok=%v", tc.v, err, tc.ok)
		}
	}
}

func TestEmptyAndDotSegmentsAreBadParameters(t *testing.T) {
	s := newTestServer(t)
	for _, p := range []string{"/v1/locks//acquire", "/v1/locks/./acquire", "/v1/locks/../acquire", "/v1/sessions/..",
		"/./healthz", "/v1/../healthz"} {
		req, _ := http.NewRequest("POST", s.URL+p, nil)
		req.URL.Opaque = p // keep the path as written
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Errorf("%s: %d %s, want 400 JSON", p, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
	// Request targets written as they are on the wire: "//x" has an empty
	// first segment (400); an absolute-form target with no path matches no
	// route (404). JSON either way, never ServeMux's redirect.
	addr := strings.TrimPrefix(s.URL, "http://")
	for _, c := range []struct {
		target string
		status int
	}{{"//v1/locks/a", 400}, {"//healthz", 400}, {"http://" + addr, 404}} {
		resp, body := rawRoundTrip(t, addr, "GET "+c.target+" HTTP/1.1\r\nHost: "+addr+"\r\n\r\n")
		if resp.StatusCode != c.status || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("GET %s: %d %s %s, want %d JSON", c.target, resp.StatusCode, resp.Header.Get("Content-Type"), body, c.status)
		}
	}
}
