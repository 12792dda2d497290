package dedup

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/durableobjects/durable"
)

func TestTarget(t *testing.T) {
	rt := durable.NewRuntime(t.TempDir())
	c, err := Register(rt, Options{Upstreams: map[string]string{
		"api":   "http://h/api",
		"slash": "http://h/api/",
		"root":  "https://h:8443",
		"rootS": "http://h/",
		"esc":   "http://h/a%20b/",
		"user":  "http://u:p@h/x",
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ up, path, query, want string }{
		{"api", "x", "", "http://h/api/x"},
		{"slash", "x", "", "http://h/api/x"},
		{"api", "", "", "http://h/api/"},
		{"root", "x/y", "a=1&b=2", "https://h:8443/x/y?a=1&b=2"},
		{"rootS", "x", "", "http://h/x"},
		{"esc", "a%2Fb", "", "http://h/a%20b/a%2Fb"},
		{"api", "caf%C3%A9", "q=%20", "http://h/api/caf%C3%A9?q=%20"},
		{"api", "http:%2F%2Fevil%2F", "", "http://h/api/http:%2F%2Fevil%2F"},
		{"user", "x", "", "http://u:p@h/x/x"},
	} {
		u, err := c.Target(tc.up, tc.path, tc.query)
		if err != nil || u.String() != tc.want {
			t.Errorf("Target(%q, %q, %q) = %v, %v; want %s", tc.up, tc.path, tc.query, u, err, tc.want)
		}
	}
	if _, err := c.Target("nope", "x", ""); !errors.Is(err, ErrUnknownUpstream) {
		t.Errorf("unknown upstream: %v", err)
	}
	if _, err := c.Target("api", "..%2Fx", ""); !errors.Is(err, ErrInvalidPath) {
		t.Errorf("dot segment: %v", err)
	}
}

func TestCheckPath(t *testing.T) {
	for _, tc := range []struct {
		path string
		ok   bool
	}{
		{"", true},
		{"x", true},
		{"x/y/", true},
		{"...", true},
		{".x/..y/x..", true},
		{"a%2Fb", true},
		{"..", false},
		{".", false},
		{"x/..", false},
		{"x/./y", false},
		{"..%2Fx", false},
		{"%2E%2E", false},
		{"%2e/x", false},
		{"..%5Cx", false},
		{"x\\..\\y", false},
		{"%zz", false},
	} {
		if err := CheckPath(tc.path); (err == nil) != tc.ok {
			t.Errorf("CheckPath(%q) = %v, want ok=%v", tc.path, err, tc.ok)
		}
	}
}

func TestRemoveHopByHop(t *testing.T) {
	h := http.Header{
		"Connection":          {"X-A, keep-alive", "X-B"},
		"X-A":                 {"1"},
		"X-B":                 {"2"},
		"Keep-Alive":          {"timeout=5"},
		"Proxy-Authenticate":  {"Basic"},
		"Proxy-Authorization": {"x"},
		"Te":                  {"trailers"},
		"Trailer":             {"X-T"},
		"Transfer-Encoding":   {"chunked"},
		"Upgrade":             {"h2c"},
		"X-Kept":              {"yes"},
		"Content-Type":        {"text/plain"},
	}
	removeHopByHop(h)
	if len(h) != 2 || h.Get("X-Kept") != "yes" || h.Get("Content-Type") != "text/plain" {
		t.Fatalf("left %v", h)
	}
}

func TestRegisterChecksUpstreams(t *testing.T) {
	for _, base := range []string{"ftp://h/x", "http:///x", "/relative", "http://h/x?q=1", "http://h/x#f", "://bad"} {
		rt := durable.NewRuntime(t.TempDir())
		if _, err := Register(rt, Options{Upstreams: map[string]string{"u": base}}); err == nil {
			t.Errorf("Register accepted base URL %q", base)
		}
	}
	rt := durable.NewRuntime(t.TempDir())
	if _, err := Register(rt, Options{MaxBody: -1}); err == nil {
		t.Error("Register accepted a negative MaxBody")
	}
}

func TestObjectName(t *testing.T) {
	a := ObjectName("up", "x", "q=1")
	if a == ObjectName("up", "x", "q=2") || a == ObjectName("up", "x/", "q=1") || a == ObjectName("up2", "x", "q=1") {
		t.Fatal("different keys share a name")
	}
	// Upstream names may hold '/' (escaped in the path): the quoting keeps
	// "a/b" + "c" apart from "a" + "b/c".
	if ObjectName("a/b", "c", "") == ObjectName("a", "b/c", "") {
		t.Fatal("ambiguous key")
	}
	long := ObjectName("up", strings.Repeat("p", 1000), "")
	if len(long) > MaxKeyName || !strings.HasPrefix(long, "sha256:") || long == ObjectName("up", strings.Repeat("p", 999), "") {
		t.Fatalf("long key named %q", long)
	}
}
