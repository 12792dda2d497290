package client_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/durableobjects/durable"
	"github.com/durableobjects/durable/client"
	"github.com/durableobjects/durable/gateway"
)

func TestFetch(t *testing.T) {
	var hits atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("X-Up", "1")
		w.Header().Set("Content-Type", "text/plain")
		switch r.URL.Path {
		case "/api/missing":
			w.WriteHeader(http.StatusNotFound)
		case "/api/busy":
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		io.WriteString(w, r.URL.EscapedPath()+"?"+r.URL.RawQuery)
	}))
	t.Cleanup(up.Close)
	s := newServer(t, withUpstream("up", up.URL+"/api"))
	c := newClient(t, s)
	ctx := testCtx(t)

	resp, err := c.Fetch(ctx, "up", "items/a b", url.Values{"x": {"1"}, "y": {"2"}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != 200 || resp.Header.Get("X-Up") != "1" || string(resp.Body) != "/api/items/a%20b?x=1&y=2" || resp.APIError() != nil {
		t.Fatalf("fetch: %d %v %q", resp.Status, resp.Header, resp.Body)
	}
	// The upstream's statuses are answers, not errors, and its 503 is not
	// retried.
	hits.Store(0)
	for path, status := range map[string]int{"missing": 404, "busy": 503} {
		resp, err := c.Fetch(ctx, "up", path, nil)
		if err != nil || resp.Status != status || resp.APIError() != nil {
			t.Fatalf("%s: %+v, %v", path, resp, err)
		}
	}
	if hits.Load() != 2 {
		t.Fatalf("upstream hit %d times, want 2 (no retry of its 503)", hits.Load())
	}
	// The server's own errors come as answers too, with APIError.
	resp, err = c.Fetch(ctx, "nope", "x", nil)
	if err != nil || resp.Status != 404 || !client.IsNotFound(resp.APIError()) {
		t.Fatalf("unknown upstream: %+v, %v", resp, err)
	}
	up.Close()
	resp, err = c.Fetch(ctx, "up", "x", nil)
	if err != nil || resp.Status != 502 || resp.APIError() == nil || resp.APIError().Code != client.CodeBadGateway {
		t.Fatalf("upstream down: %+v, %v", resp, err)
	}
}

// echo is an application class: it echoes the request it was sent.
type echo struct{}

func (echo) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	json.NewEncoder(w).Encode(map[string]string{"method": r.Method, "path": r.URL.Path, "query": r.URL.RawQuery,
		"body": string(body), "ctype": r.Header.Get("Content-Type")})
}

func withEcho(t *testing.T) serverOption {
	return func(rt *durable.Runtime, c *gateway.Config) {
		ns, err := rt.Register("echo", func(*durable.State) any { return echo{} })
		if err != nil {
			t.Fatal(err)
		}
		c.Classes = append(c.Classes, ns)
	}
}

func TestObject(t *testing.T) {
	s := newServer(t, withEcho(t))
	c := newClient(t, s)
	ctx := testCtx(t)
	resp, err := c.Object(ctx, client.ObjectRequest{Class: "echo", Name: "alice", Method: "POST", Path: "/some/path",
		Query: url.Values{"q": {"1"}}, Header: http.Header{"Content-Type": {"text/plain"}}, Body: []byte("hello")})
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]string
	json.Unmarshal(resp.Body, &got)
	if resp.Status != 202 || got["method"] != "POST" || got["path"] != "/some/path" || got["query"] != "q=1" ||
		got["body"] != "hello" || got["ctype"] != "text/plain" {
		t.Fatalf("object: %d %s", resp.Status, resp.Body)
	}
	ns, _ := s.RT.Namespace("echo")
	id := ns.IDFromName("alice").String()
	resp, err = c.Object(ctx, client.ObjectRequest{Class: "echo", ID: id})
	if err != nil || resp.Status != 202 || !strings.Contains(string(resp.Body), `"path":"/"`) {
		t.Fatalf("by ID: %+v, %v", resp, err)
	}
	resp, err = c.Object(ctx, client.ObjectRequest{Class: "nope", Name: "x"})
	if err != nil || !client.IsNotFound(resp.APIError()) {
		t.Fatalf("unknown class: %+v, %v", resp, err)
	}
	if _, err := c.Object(ctx, client.ObjectRequest{Class: "echo"}); err == nil {
		t.Fatal("no name or ID accepted")
	}
	// "." and ".." are names like any other (sent as %2E segments).
	for _, name := range []string{".", ".."} {
		resp, err := c.Object(ctx, client.ObjectRequest{Class: "echo", Name: name})
		if err != nil || resp.Status != 202 {
			t.Fatalf("object %q: %+v, %v", name, resp, err)
		}
	}
}
