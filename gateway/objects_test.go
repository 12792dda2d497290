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
