package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeServer is the smallest server a scenario can run against: it answers
// the api.md routes the HTTP scenarios use and counts what it saw. It stands
// in for durable there; docs-fanout, which needs WebSockets, runs against a
// real durable in fanout_test.go.
type fakeServer struct {
	mu       sync.Mutex
	seen     map[string]int // "METHOD /first/two/segments" → count
	locks    map[string]string
	sessions map[string]bool
	next     int
	conns    atomic.Int64
	token    string
	status   func(n int) int // if set, the status of the n-th request (from 1)
	total    atomic.Int64
}

func newFakeServer(t *testing.T) (*fakeServer, *httptest.Server) {
	f := &fakeServer{seen: map[string]int{}, locks: map[string]string{}, sessions: map[string]bool{}}
	srv := httptest.NewUnstartedServer(f)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			f.conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeServer) count(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.seen[key]
}

func (f *fakeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := f.total.Add(1)
	body, _ := io.ReadAll(r.Body)
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	f.mu.Lock()
	defer f.mu.Unlock()
	key := r.Method + " /" + strings.Join(parts[:min(2, len(parts))], "/")
	if len(parts) == 4 {
		key += "/" + parts[3]
	}
	f.seen[key]++
	w.Header().Set("Content-Type", "application/json")
	if f.token != "" && r.Header.Get("Authorization") != "Bearer "+f.token {
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"error":{"code":"unauthorized","message":"no"}}`)
		return
	}
	if f.status != nil {
		w.WriteHeader(f.status(int(n)))
		io.WriteString(w, `{}`)
		return
	}
	switch {
	case key == "POST /v1/ratelimit/check":
		io.WriteString(w, `{"allowed":true,"remaining":1,"reset_ms":60000}`)
	case key == "POST /v1/locks/acquire":
		if _, held := f.locks[parts[2]]; held {
			w.WriteHeader(http.StatusConflict)
			io.WriteString(w, `{"error":{"code":"lock_held","message":"held"}}`)
			return
		}
		f.next++
		tok := fmt.Sprintf("tok%d", f.next)
		f.locks[parts[2]] = tok
		fmt.Fprintf(w, `{"token":%q,"fencing":%d,"expires_at_ms":1}`, tok, f.next)
	case key == "POST /v1/locks/release":
		var req struct{ Token string }
		json.Unmarshal(body, &req)
		if f.locks[parts[2]] != req.Token {
			w.WriteHeader(http.StatusConflict)
			io.WriteString(w, `{"error":{"code":"not_owner","message":"no"}}`)
			return
		}
		delete(f.locks, parts[2])
		io.WriteString(w, `{"released":true}`)
	case key == "POST /v1/sessions":
		f.next++
		id := fmt.Sprintf("s%d", f.next)
		f.sessions[id] = true
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"id":%q,"user_id":"u","expires_at_ms":1}`, id)
	case key == "GET /v1/sessions" && len(parts) == 3 && f.sessions[parts[2]]:
		fmt.Fprintf(w, `{"id":%q}`, parts[2])
	default:
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"error":{"code":"not_found","message":"no"}}`)
	}
}

func TestRunCountsMatchServer(t *testing.T) {
	for _, sc := range Scenarios() {
		t.Run(sc.Name, func(t *testing.T) {
			if sc.Name == "docs-fanout" {
				t.Skip("needs WebSockets: runs against durable in fanout_test.go")
			}
			f, srv := newFakeServer(t)
			const conns = 4
			res, err := Run(t.Context(), Config{BaseURL: srv.URL, Conns: conns, Ops: 300, Scenario: sc.Name})
			if err != nil {
				t.Fatal(err)
			}
			if res.FailedOps != 0 || res.Errors() != 0 {
				t.Fatalf("failures: %d failed ops, %d errors; first: %s", res.FailedOps, res.Errors(), res.FirstError)
			}
			if res.Ops != 300 {
				t.Errorf("Ops = %d, want 300", res.Ops)
			}
			if got, want := res.Requests, int64(sc.RequestsPerOp)*300; got != want {
				t.Errorf("Requests = %d, want %d", got, want)
			}
			setup := 0
			if sc.Name == "session-get" {
				setup = SessionPool
				if got := f.count("POST /v1/sessions"); got != SessionPool {
					t.Errorf("setup created %d sessions, want %d", got, SessionPool)
				}
			}
			if got := f.total.Load() - int64(setup); got != res.Requests {
				t.Errorf("server saw %d measured requests, result reports %d", got, res.Requests)
			}
			if got := res.Statuses[http.StatusOK] + res.Statuses[http.StatusCreated]; got != res.Requests {
				t.Errorf("2xx tally %d, want %d (%v)", got, res.Requests, res.Statuses)
			}
			if got := f.conns.Load(); got > conns {
				t.Errorf("server saw %d connections, want ≤ %d", got, conns)
			}
			if res.Latency.P50 <= 0 || res.Latency.P50 > res.Latency.P99 || res.Latency.P99 > res.Latency.P999 || res.Latency.P999 > res.Latency.Max {
				t.Errorf("latency summary not ordered: %+v", res.Latency)
			}
		})
	}
}

func TestRunDuration(t *testing.T) {
	f, srv := newFakeServer(t)
	res, err := Run(t.Context(), Config{BaseURL: srv.URL, Conns: 3, Duration: 200 * time.Millisecond, Warmup: 50 * time.Millisecond, Scenario: "ratelimit-10k"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Ops == 0 {
		t.Fatal("no ops in 200ms")
	}
	// The warmup's requests reach the server but are not reported.
	warm := f.total.Load() - res.Requests
	if warm <= 0 {
		t.Errorf("server saw %d requests, result %d: warmup sent nothing", f.total.Load(), res.Requests)
	}
	if res.Statuses[200] != res.Requests {
		t.Errorf("statuses %v, requests %d", res.Statuses, res.Requests)
	}
}

func TestRunTalliesStatuses(t *testing.T) {
	f, srv := newFakeServer(t)
	f.status = func(n int) int {
		switch n % 4 {
		case 0:
			return http.StatusTooManyRequests
		case 1:
			return http.StatusServiceUnavailable
		default:
			return http.StatusOK
		}
	}
	res, err := Run(t.Context(), Config{BaseURL: srv.URL, Conns: 2, Ops: 400, Scenario: "ratelimit-one"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[int]int64{200: 200, 429: 100, 503: 100}
	for code, n := range want {
		if res.Statuses[code] != n {
			t.Errorf("Statuses[%d] = %d, want %d (all: %v)", code, res.Statuses[code], n, res.Statuses)
		}
	}
	if res.FailedOps != 200 || res.Errors() != 200 {
		t.Errorf("FailedOps = %d, Errors = %d, want 200 each", res.FailedOps, res.Errors())
	}
	if !strings.Contains(res.FirstError, "status") {
		t.Errorf("FirstError = %q, want a status error", res.FirstError)
	}
}

func TestRunTransportErrors(t *testing.T) {
	// A server that drops every connection without answering.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	defer srv.Close()
	res, err := Run(t.Context(), Config{BaseURL: srv.URL, Conns: 2, Ops: 20, Scenario: "ratelimit-one"})
	if err != nil {
		t.Fatal(err)
	}
	if res.TransportErrors != 20 || res.Requests != 20 || res.FailedOps != 20 || len(res.Statuses) != 0 {
		t.Errorf("transport errors %d, requests %d, failed %d, statuses %v; want 20, 20, 20, none",
			res.TransportErrors, res.Requests, res.FailedOps, res.Statuses)
	}
}

func TestRunSendsToken(t *testing.T) {
	f, srv := newFakeServer(t)
	f.token = "s3cret"
	res, err := Run(t.Context(), Config{BaseURL: srv.URL, Token: "s3cret", Conns: 1, Ops: 10, Scenario: "ratelimit-one"})
	if err != nil || res.Statuses[200] != 10 {
		t.Fatalf("with token: err %v, statuses %v", err, res.Statuses)
	}
	res, err = Run(t.Context(), Config{BaseURL: srv.URL, Token: "wrong", Conns: 1, Ops: 10, Scenario: "ratelimit-one"})
	if err != nil || res.Statuses[401] != 10 {
		t.Fatalf("with a wrong token: err %v, statuses %v", err, res.Statuses)
	}
}

func TestRefusesNonLoopback(t *testing.T) {
	for _, base := range []string{
		"http://10.0.0.1:8080", "http://192.168.1.10", "http://8.8.8.8", "http://example.com",
		"http://localhost.example.com", "http://[2001:db8::1]:80", "http://0.0.0.0:8080",
	} {
		_, err := Run(t.Context(), Config{BaseURL: base, Ops: 1, Scenario: "ratelimit-one"})
		if !errors.Is(err, ErrNotLoopback) {
			t.Errorf("Run(%s) error = %v, want ErrNotLoopback", base, err)
		}
	}
	for _, base := range []string{"https://127.0.0.1", "127.0.0.1:80", "http://"} {
		if _, err := CheckTarget(base); err == nil {
			t.Errorf("CheckTarget(%q) accepted a malformed target", base)
		}
	}
	for _, base := range []string{"http://127.0.0.1:1", "http://127.8.9.10", "http://[::1]:8080", "http://localhost:9", "http://LOCALHOST"} {
		if _, err := CheckTarget(base); err != nil {
			t.Errorf("CheckTarget(%q) = %v, want accepted", base, err)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []Config{
		{BaseURL: "http://127.0.0.1:1", Scenario: "ratelimit-one"},                       // unbounded
		{BaseURL: "http://127.0.0.1:1", Ops: 1, Scenario: "nope"},                        // unknown scenario
		{BaseURL: "http://127.0.0.1:1", Ops: 1, Conns: -1, Scenario: "ratelimit-one"},    // conns
		{BaseURL: "http://127.0.0.1:1", Duration: -1, Ops: 1, Scenario: "ratelimit-one"}, // negative
	} {
		if _, err := Run(t.Context(), cfg); err == nil {
			t.Errorf("Run(%+v) accepted", cfg)
		}
	}
}

func TestRunCancelled(t *testing.T) {
	_, srv := newFakeServer(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := Run(ctx, Config{BaseURL: srv.URL, Duration: time.Hour, Scenario: "ratelimit-one"})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestResultOutput(t *testing.T) {
	r := Result{
		Scenario: "x", Target: "http://127.0.0.1:1", Conns: 2, Elapsed: 2 * time.Second,
		Ops: 100, Requests: 200, Statuses: map[int]int64{200: 190, 503: 10},
		Latency: Latency{P50: time.Millisecond, P99: 1500 * time.Microsecond},
	}
	if got := r.OpsPerSec(); got != 50 {
		t.Errorf("OpsPerSec = %v, want 50", got)
	}
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		OpsPerSec float64            `json:"ops_per_s"`
		ReqPerSec float64            `json:"requests_per_s"`
		Statuses  map[string]int64   `json:"statuses"`
		LatencyMS map[string]float64 `json:"latency_ms"`
	}
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	if m.OpsPerSec != 50 || m.ReqPerSec != 100 || m.Statuses["503"] != 10 || m.LatencyMS["p99"] != 1.5 {
		t.Errorf("JSON = %s", data)
	}
	s := r.String()
	for _, want := range []string{"503: 10", "p99 1.500ms", "50.0/s"} {
		if !strings.Contains(s, want) {
			t.Errorf("String() lacks %q:\n%s", want, s)
		}
	}
}
