package gateway

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/durableobjects/durable"
)

// echo is an application class served under /v1/objects/echo/: it counts
// requests in storage and echoes what it was sent.
type echo struct{ st *durable.State }

func (e *echo) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n, _, _ := durable.Get[int](e.st.Storage(), "n")
	n++
	durable.Put(e.st.Storage(), "n", n)
	body, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Echo", "yes")
	w.WriteHeader(http.StatusAccepted)
	json.NewEncoder(w).Encode(map[string]any{
		"method": r.Method, "path": r.URL.Path, "query": r.URL.RawQuery,
		"body": string(body), "n": n, "id": e.st.ID().String(),
	})
}

func withEcho(t *testing.T) serverOption {
	return func(rt *durable.Runtime, c *Config) {
		ns, err := rt.Register("echo", func(st *durable.State) any { return &echo{st: st} })
		if err != nil {
			t.Fatal(err)
		}
		c.Classes = append(c.Classes, ns)
	}
}

func TestOwnObjectsByNameAndID(t *testing.T) {
	s := newTestServer(t, withEcho(t))
	r := s.do("POST", "/v1/objects/echo/alice/some/path?x=1", "hello")
	r.expect(t, http.StatusAccepted, "")
	if r.Header.Get("X-Echo") != "yes" || r.JSON["path"] != "/some/path" || r.JSON["query"] != "x=1" ||
		r.JSON["body"] != "hello" || r.JSON["method"] != "POST" || r.num(t, "n") != 1 {
		t.Fatalf("forwarded request: %s", r.Body)
	}
	id := r.str(t, "id")
	// The same object by its ID: its stored count goes on.
	r = s.do("GET", "/v1/objects/echo/id/"+id+"/", nil).expect(t, http.StatusAccepted, "")
	if r.num(t, "n") != 2 || r.JSON["path"] != "/" {
		t.Fatalf("by ID: %s", r.Body)
	}
	// A different name is a different object.
	if r := s.do("GET", "/v1/objects/echo/bob/", nil); r.num(t, "n") != 1 {
		t.Fatalf("bob: %s", r.Body)
	}
}

func TestOwnObjectsErrors(t *testing.T) {
	s := newTestServer(t, withEcho(t), withConfig(func(c *Config) { c.MaxBody = 100 }))
	s.do("GET", "/v1/objects/nope/x/", nil).expect(t, 404, "not_found")
	// Built-in classes are not reachable around their validated routes.
	s.do("GET", "/v1/objects/lock/x/", nil).expect(t, 404, "not_found")
	s.do("GET", "/v1/objects/echo/id/"+strings.Repeat("0", 64)+"/", nil).expect(t, 400, "invalid_argument")
	s.do("GET", "/v1/objects/echo/id/xyz/", nil).expect(t, 400, "invalid_argument")
	s.do("GET", "/v1/objects/echo/"+strings.Repeat("n", 257)+"/", nil).expect(t, 400, "invalid_argument")
	s.do("POST", "/v1/objects/echo/a/", strings.Repeat("b", 101)).expect(t, 413, "payload_too_large")
	s.do("POST", "/v1/objects/echo/a/", strings.Repeat("b", 100)).expect(t, 202, "")
}

// Without a slash after the object, a request reaches the same object with
// path "/" instead of being redirected; an escaped '/' stays in the name.
func TestOwnObjectsWithoutTrailingSlash(t *testing.T) {
	s := newTestServer(t, withEcho(t))
	r := s.do("GET", "/v1/objects/echo/alice", nil).expect(t, http.StatusAccepted, "")
	if r.JSON["path"] != "/" || r.num(t, "n") != 1 {
		t.Fatalf("alice without a slash: %s", r.Body)
	}
	id := r.str(t, "id")
	if r := s.do("GET", "/v1/objects/echo/alice/", nil).expect(t, http.StatusAccepted, ""); r.str(t, "id") != id || r.num(t, "n") != 2 {
		t.Fatalf("alice with a slash is another object: %s", r.Body)
	}
	if r := s.do("GET", "/v1/objects/echo/id/"+id, nil).expect(t, http.StatusAccepted, ""); r.str(t, "id") != id || r.JSON["path"] != "/" || r.num(t, "n") != 3 {
		t.Fatalf("by ID without a slash: %s", r.Body)
	}
	// "a%2Fb" is the object named "a/b", not object "a" with path "/b".
	slashed := s.do("GET", "/v1/objects/echo/a%2Fb", nil).expect(t, http.StatusAccepted, "")
	plain := s.do("GET", "/v1/objects/echo/a/b", nil).expect(t, http.StatusAccepted, "")
	if slashed.str(t, "id") == plain.str(t, "id") || slashed.JSON["path"] != "/" || plain.JSON["path"] != "/b" {
		t.Fatalf("a%%2Fb: %s; a/b: %s", slashed.Body, plain.Body)
	}
	s.do("GET", "/v1/objects/nope/x", nil).expect(t, 404, "not_found")
	s.do("GET", "/v1/objects/echo/id/xyz", nil).expect(t, 400, "invalid_argument")
}
