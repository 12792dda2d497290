package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/durableobjects/durable"
	"github.com/durableobjects/durable/durabletest"
	"github.com/durableobjects/durable/patterns/collab"
)

// docMsg is a message from a document's socket, decoded.
type docMsg struct {
	Type    string
	Content string
	Version int64
	Message string
	Keys    []string // the message's fields, sorted
	Raw     string
}

func (m docMsg) String() string { return m.Raw }

// is reports whether m is a message of type typ with exactly the fields
// api.md gives it and the content and version given (when they apply).
func (m docMsg) is(typ, content string, version int64) bool {
	want := map[string][]string{
		"init":     {"content", "type", "version"},
		"edit":     {"content", "type", "version"},
		"conflict": {"content", "type", "version"},
		"ack":      {"type", "version"},
		"error":    {"message", "type"},
		"pong":     {"type"},
	}[typ]
	if m.Type != typ || !slices.Equal(m.Keys, want) {
		return false
	}
	switch typ {
	case "init", "edit", "conflict":
		return m.Content == content && m.Version == version
	case "ack":
		return m.Version == version
	case "error":
		return m.Message != ""
	}
	return true
}

// docURL is the WebSocket URL of document id.
func docURL(s *testServer, id string) string {
	return "ws" + strings.TrimPrefix(s.URL, "http") + "/v1/docs/" + url.PathEscape(id)
}

// dialDoc connects to document id, checks the init message against content
// and version, and closes the connection when the test ends.
func dialDoc(t *testing.T, s *testServer, id, content string, version int64) *websocket.Conn {
	t.Helper()
	c := dialDocRaw(t, docURL(s, id), nil)
	if m := readDoc(t, c); !m.is("init", content, version) {
		t.Fatalf("first message %s, want init of %q at version %d", m, content, version)
	}
	return c
}

func dialDocRaw(t *testing.T, u string, opts *websocket.DialOptions) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, u, opts)
	if err != nil {
		t.Fatalf("dial %s: %v", u, err)
	}
	c.SetReadLimit(64 << 20)
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// readDoc reads the next message of c.
func readDoc(t *testing.T, c *websocket.Conn) docMsg {
	t.Helper()
	m, err := readDocErr(c)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return m
}

func readDocErr(c *websocket.Conn) (docMsg, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	typ, b, err := c.Read(ctx)
	if err != nil {
		return docMsg{}, err
	}
	if typ != websocket.MessageText {
		return docMsg{}, fmt.Errorf("a binary message: %q", b)
	}
	return parseDocMsg(b)
}

func parseDocMsg(b []byte) (docMsg, error) {
	m := docMsg{Raw: string(b)}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return m, fmt.Errorf("message %q: %v", b, err)
	}
	for k, v := range fields {
		m.Keys = append(m.Keys, k)
		var err error
		switch k {
		case "type":
			err = json.Unmarshal(v, &m.Type)
		case "content":
			err = json.Unmarshal(v, &m.Content)
		case "version":
			err = json.Unmarshal(v, &m.Version)
		case "message":
			err = json.Unmarshal(v, &m.Message)
		}
		if err != nil {
			return m, fmt.Errorf("message %q, field %s: %v", b, k, err)
		}
	}
	slices.Sort(m.Keys)
	return m, nil
}

// sendDoc sends v: a string or []byte as it is, anything else as JSON.
func sendDoc(t *testing.T, c *websocket.Conn, v any) {
	t.Helper()
	var b []byte
	switch v := v.(type) {
	case string:
		b = []byte(v)
	case []byte:
		b = v
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, b); err != nil {
		t.Fatalf("write: %v", err)
	}
}

func edit(content string) map[string]any { return map[string]any{"type": "edit", "content": content} }

func editAt(content string, base int64) map[string]any {
	return map[string]any{"type": "edit", "content": content, "base_version": base}
}

// docsPoll polls cond until it holds, failing the test after 20 s.
func docsPoll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// evictAll moves the fake clock past the idle timeout until no object is
// in memory.
func (s *testServer) evictAll(t *testing.T) {
	t.Helper()
	docsPoll(t, "every object to be evicted", func() bool {
		s.Clock.Advance(s.RT.IdleTimeout + time.Second)
		return s.RT.Stats().ActiveObjects == 0
	})
}

// getDoc reads document id over HTTP and checks the answer's shape.
func getDoc(t *testing.T, s *testServer, id string) (string, int64) {
	t.Helper()
	r := s.do("GET", "/v1/docs/"+url.PathEscape(id), nil).expect(t, 200, "")
	if got := keys(r.JSON); !slices.Equal(got, []string{"content", "version"}) {
		t.Fatalf("GET fields %v; body %s", got, r.Body)
	}
	return r.str(t, "content"), r.num(t, "version")
}

var docsStart = time.Date(2031, 3, 1, 12, 0, 0, 0, time.UTC)

func TestDocsHTTP(t *testing.T) {
	s := newTestServer(t)
	if c, v := getDoc(t, s, "notes"); c != "" || v != 0 {
		t.Fatalf("new document: %q at %d, want \"\" at 0", c, v)
	}
	put := func(body any) *response { return s.do("PUT", "/v1/docs/notes", body) }
	r := put(`{"content": "hello"}`).expect(t, 200, "")
	if got := keys(r.JSON); !slices.Equal(got, []string{"version"}) || r.num(t, "version") != 1 {
		t.Fatalf("PUT answer %s", r.Body)
	}
	if c, v := getDoc(t, s, "notes"); c != "hello" || v != 1 {
		t.Fatalf("after PUT: %q at %d", c, v)
	}
	if v := put(`{"content": "hello, world", "base_version": 1}`).expect(t, 200, "").num(t, "version"); v != 2 {
		t.Fatalf("PUT at the current base: version %d, want 2", v)
	}
	// A stale base_version (older, newer, negative) is a conflict and stores nothing.
	for _, base := range []int64{1, 0, 3, -1, 1 << 62} {
		put(map[string]any{"content": "lost", "base_version": base}).expect(t, 409, "conflict")
	}
	if c, v := getDoc(t, s, "notes"); c != "hello, world" || v != 2 {
		t.Fatalf("after conflicts: %q at %d", c, v)
	}
	// base_version null is the same as absent; empty content is content.
	if v := put(`{"content": "", "base_version": null}`).expect(t, 200, "").num(t, "version"); v != 3 {
		t.Fatalf("PUT with null base_version: %d", v)
	}
	// Unicode and HTML survive as they are.
	const fancy = "<b>naïve</b> & 日本語 \u2028 \x00 \"quoted\""
	put(map[string]any{"content": fancy}).expect(t, 200, "")
	if c, v := getDoc(t, s, "notes"); c != fancy || v != 4 {
		t.Fatalf("unicode content: %q at %d", c, v)
	}
	// Documents are independent; ids are any valid path parameter.
	for _, id := range []string{"other", "with space/and slash", "日本", strings.Repeat("x", 256)} {
		if c, v := getDoc(t, s, id); c != "" || v != 0 {
			t.Fatalf("document %q: %q at %d", id, c, v)
		}
		s.do("PUT", "/v1/docs/"+url.PathEscape(id), `{"content":"x"}`).expect(t, 200, "")
	}
	if _, v := getDoc(t, s, "notes"); v != 4 {
		t.Fatalf("notes changed by other documents: version %d", v)
	}
}

func TestDocsHTTPValidation(t *testing.T) {
	s := newTestServer(t)
	s.do("PUT", "/v1/docs/v", `{"content": "v1"}`).expect(t, 200, "")
	activations := s.RT.Stats().Activations
	for _, body := range []string{
		``, `{}`, `{"content": null}`, `{"base_version": 1}`,
		`{"content": 5}`, `{"content": ["a"]}`, `{"content": {}}`, `{"content": true}`,
		`{"content": "x", "base_version": "1"}`, `{"content": "x", "base_version": 1.5}`,
		`{"content": "x", "base_version": 1e30}`, `{"content": "x", "base_version": true}`,
		`{"content": "x", "extra": 1}`, `{"content": "x"} {}`, `{"content": "x"`, `[]`, `"x"`, `null`,
	} {
		s.do("PUT", "/v1/docs/v", body).expect(t, 400, "invalid_argument")
	}
	// Path parameters: at most 256 bytes of UTF-8 without control characters.
	for _, p := range []string{strings.Repeat("y", 257), "a%00b", "a%0Ab", "%FF"} {
		s.do("GET", "/v1/docs/"+p, nil).expect(t, 400, "invalid_argument")
		s.do("PUT", "/v1/docs/"+p, `{"content":"x"}`).expect(t, 400, "invalid_argument")
	}
	if got := s.RT.Stats().Activations; got != activations {
		t.Fatalf("invalid requests activated %d objects", got-activations)
	}
	// Content: at most 1 MiB.
	s.do("PUT", "/v1/docs/v", map[string]any{"content": strings.Repeat("a", collab.MaxContent+1)}).expect(t, 400, "invalid_argument")
	s.do("PUT", "/v1/docs/v", map[string]any{"content": strings.Repeat("é", collab.MaxContent/2) + "a"}).expect(t, 400, "invalid_argument")
	if c, v := getDoc(t, s, "v"); c != "v1" || v != 1 {
		t.Fatalf("refused content stored: %d bytes at %d", len(c), v)
	}
	full := strings.Repeat("a", collab.MaxContent)
	s.do("PUT", "/v1/docs/v", map[string]any{"content": full}).expect(t, 200, "")
	if c, v := getDoc(t, s, "v"); c != full || v != 2 {
		t.Fatalf("1 MiB content: %d bytes at %d", len(c), v)
	}
	// 1 MiB of '<', which Go's encoder escapes to 6 MiB of \u003c: the body
	// limit lets it through.
	angles := strings.Repeat("<", collab.MaxContent)
	body, _ := json.Marshal(map[string]any{"content": angles})
	if len(body) < 6*collab.MaxContent {
		t.Fatalf("body of %d bytes: not escaped as expected", len(body))
	}
	s.do("PUT", "/v1/docs/v", body).expect(t, 200, "")
	if c, v := getDoc(t, s, "v"); c != angles || v != 3 {
		t.Fatalf("escaped content: %d bytes at %d", len(c), v)
	}
	// The body limit: DocsMaxBody bytes are read (the content in them is
	// over 1 MiB: 400); one more is a 413.
	padded := func(n int) string {
		const obj = `{"content": "x"}`
		return obj + strings.Repeat(" ", n-len(obj))
	}
	s.do("PUT", "/v1/docs/v", padded(DocsMaxBody)).expect(t, 200, "")
	s.do("PUT", "/v1/docs/v", padded(DocsMaxBody+1)).expect(t, 413, "payload_too_large")
	s.do("PUT", "/v1/docs/v", map[string]any{"content": strings.Repeat("d", DocsMaxBody)}).expect(t, 413, "payload_too_large")
	if c, v := getDoc(t, s, "v"); c != "x" || v != 4 {
		t.Fatalf("%q at %d after refused bodies, want x at 4", c, v)
	}
	// Methods and routes.
	for _, m := range []string{"POST", "DELETE", "PATCH"} {
		r := s.do(m, "/v1/docs/v", nil).expect(t, 405, "method_not_allowed")
		if a := r.Header.Get("Allow"); !strings.Contains(a, "GET") || !strings.Contains(a, "PUT") {
			t.Fatalf("%s: Allow %q", m, a)
		}
	}
	s.do("GET", "/v1/docs/a/b", nil).expect(t, 404, "not_found")
	s.do("GET", "/v1/docs/", nil).expect(t, 400, "invalid_argument") // an empty {id}
}

func TestDocsHTTPLargerConfiguredBody(t *testing.T) {
	// A body limit configured above DocsMaxBody applies to the docs routes too.
	s := newTestServer(t, withConfig(func(c *Config) { c.MaxBody = DocsMaxBody + 1<<20 }))
	s.do("PUT", "/v1/docs/v", `{"content": "x"}`+strings.Repeat(" ", DocsMaxBody)).expect(t, 200, "")
}

func TestDocsWebSocketHandshake(t *testing.T) {
	s := newTestServer(t, withRuntime(func(rt *durable.Runtime) { rt.MaxWebSockets = 2 }))
	activations := s.RT.Stats().Activations
	good := map[string]string{
		"Connection":            "Upgrade",
		"Upgrade":               "websocket",
		"Sec-WebSocket-Version": "13",
		"Sec-WebSocket-Key":     "dGhlIHNhbXBsZSBub25jZQ==",
	}
	without := func(k string, set ...string) []string {
		var h []string
		for hk, v := range good {
			if hk != k {
				h = append(h, hk, v)
			}
		}
		return append(h, set...)
	}
	for name, h := range map[string][]string{
		"no Connection":    without("Connection"),
		"Connection: keep": without("Connection", "Connection", "keep-alive"),
		"version 8":        without("Sec-WebSocket-Version", "Sec-WebSocket-Version", "8"),
		"no version":       without("Sec-WebSocket-Version"),
		"no key":           without("Sec-WebSocket-Key"),
		"short key":        without("Sec-WebSocket-Key", "Sec-WebSocket-Key", "c2hvcnQ="),
		"key not base64":   without("Sec-WebSocket-Key", "Sec-WebSocket-Key", "!!!!!!!!!!!!!!!!!!!!!!!!"),
	} {
		if r := s.do("GET", "/v1/docs/hs", nil, h...); r.Status != 400 || r.errorCode() != "invalid_argument" {
			t.Fatalf("%s: %d %s", name, r.Status, r.Body)
		}
	}
	// A browser page of another origin: 403 in api.md's error shape.
	s.do("GET", "/v1/docs/hs", nil, without("", "Origin", "https://evil.example")...).expect(t, 403, "forbidden")
	s.do("HEAD", "/v1/docs/hs", nil, without("")...).expect(t, 400, "")
	s.do("GET", "/v1/docs/"+strings.Repeat("z", 257), nil, without("")...).expect(t, 400, "invalid_argument")
	if got := s.RT.Stats().Activations; got != activations {
		t.Fatalf("bad handshakes activated %d objects", got-activations)
	}
	c := dialDoc(t, s, "hs", "", 0)
	// Past the runtime's socket limit per object: 503 overloaded, in api.md's form.
	dialDoc(t, s, "hs", "", 0)
	r := s.do("GET", "/v1/docs/hs", nil, without("")...).expect(t, 503, "overloaded")
	if r.Header.Get("Retry-After") == "" {
		t.Fatal("503 without Retry-After")
	}
	// The two sockets still work.
	sendDoc(t, c, edit("still here"))
	if m := readDoc(t, c); !m.is("ack", "", 1) {
		t.Fatal(m)
	}
}

func TestDocsWebSocketNeedsToken(t *testing.T) {
	s := newTestServer(t, withConfig(func(c *Config) { c.Token = "tok" }))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, resp, err := websocket.Dial(ctx, docURL(s, "secret"), nil)
	if err == nil || resp == nil || resp.StatusCode != 401 {
		t.Fatalf("dial without token: %v", err)
	}
	c := dialDocRaw(t, docURL(s, "secret"), &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer tok"}}})
	if m := readDoc(t, c); !m.is("init", "", 0) {
		t.Fatal(m)
	}
}

func TestDocsWebSocketProtocol(t *testing.T) {
	s := newTestServer(t)
	a := dialDoc(t, s, "proto", "", 0)
	b := dialDoc(t, s, "proto", "", 0)

	// An edit: ack to the sender, the edit to the others.
	sendDoc(t, a, edit("one"))
	if m := readDoc(t, a); !m.is("ack", "", 1) {
		t.Fatalf("sender got %s", m)
	}
	if m := readDoc(t, b); !m.is("edit", "one", 1) {
		t.Fatalf("other got %s", m)
	}
	// The sender never gets its own edit: its next message is b's edit.
	sendDoc(t, b, editAt("two", 1))
	if m := readDoc(t, b); !m.is("ack", "", 2) {
		t.Fatalf("b got %s", m)
	}
	if m := readDoc(t, a); !m.is("edit", "two", 2) {
		t.Fatalf("a got %s, want b's edit", m)
	}
	// A stale base_version: a conflict with the current document, to the
	// sender only, and nothing stored.
	for _, base := range []int64{1, 0, 3, -5} {
		sendDoc(t, b, editAt("stale", base))
		if m := readDoc(t, b); !m.is("conflict", "two", 2) {
			t.Fatalf("stale base %d: %s", base, m)
		}
	}
	sendDoc(t, a, editAt("three", 2))
	if m := readDoc(t, a); !m.is("ack", "", 3) {
		t.Fatalf("a got %s", m)
	}
	if m := readDoc(t, b); !m.is("edit", "three", 3) {
		t.Fatalf("b got %s after its conflicts, want a's edit", m)
	}
	// base_version null is absent.
	sendDoc(t, a, `{"type":"edit","content":"four","base_version":null}`)
	if m := readDoc(t, a); !m.is("ack", "", 4) {
		t.Fatalf("a got %s", m)
	}
	if m := readDoc(t, b); !m.is("edit", "four", 4) {
		t.Fatal(m)
	}

	// Bad messages: an error to the sender, the socket stays usable.
	for _, bad := range []string{
		`not json`, `{"type":"edit","content":"x"`, `{"type":"edit","content":"x"} {}`, ``,
		`[1]`, `"edit"`, `42`, `null`,
		`{}`, `{"type":"delete"}`, `{"type":"init","content":"x","version":1}`, `{"type":"EDIT","content":"x"}`,
		`{"type":5,"content":"x"}`, `{"type":null,"content":"x"}`,
		`{"type":"edit"}`, `{"type":"edit","content":null}`, `{"type":"edit","content":5}`,
		`{"type":"edit","content":["x"]}`, `{"type":"edit","content":{"a":1}}`,
		`{"type":"edit","content":"x","base_version":"4"}`, `{"type":"edit","content":"x","base_version":4.5}`,
		`{"type":"edit","content":"x","base_version":99999999999999999999}`, `{"type":"edit","content":"x","base_version":[4]}`,
		`{"type":"edit","content":"x","extra":1}`, `{"type":"edit","Content":"x"}`, `{"type":"ping","content":"x"}`,
	} {
		sendDoc(t, a, bad)
		if m := readDoc(t, a); !m.is("error", "", 0) {
			t.Fatalf("message %q: got %s, want an error", bad, m)
		}
	}
	// Binary frames are read as text.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Write(ctx, websocket.MessageBinary, []byte(`{"type":"edit","content":"five"}`)); err != nil {
		t.Fatal(err)
	}
	if m := readDoc(t, a); !m.is("ack", "", 5) {
		t.Fatalf("binary edit: %s", m)
	}
	if m := readDoc(t, b); !m.is("edit", "five", 5) {
		t.Fatal(m)
	}

	// Content: 1 MiB is fine, one byte more is an error.
	full := strings.Repeat("c", collab.MaxContent)
	sendDoc(t, a, edit(full+"c"))
	if m := readDoc(t, a); !m.is("error", "", 0) || !strings.Contains(m.Message, "over") {
		t.Fatalf("content over 1 MiB: %.200s", m.Raw)
	}
	sendDoc(t, a, edit(full))
	if m := readDoc(t, a); !m.is("ack", "", 6) {
		t.Fatalf("1 MiB content: %.200s", m.Raw)
	}
	if m := readDoc(t, b); !m.is("edit", full, 6) {
		t.Fatalf("1 MiB content: %.200s", m.Raw)
	}
	// HTML is not escaped on the wire.
	sendDoc(t, a, edit("<p>a & b</p>"))
	readDoc(t, a)
	if m := readDoc(t, b); !m.is("edit", "<p>a & b</p>", 7) || !strings.Contains(m.Raw, "<p>a & b</p>") {
		t.Fatalf("HTML content: %s", m.Raw)
	}

	// Keep-alive: the exact ping is answered, and so is a ping spelled
	// differently (by the object then).
	for _, ping := range []string{collab.PingMessage, `{ "type" : "ping" }`} {
		sendDoc(t, a, ping)
		if m := readDoc(t, a); !m.is("pong", "", 0) {
			t.Fatalf("ping %q: %s", ping, m)
		}
	}

	// A new socket starts from the current document.
	c := dialDoc(t, s, "proto", "<p>a & b</p>", 7)
	if got, v := getDoc(t, s, "proto"); got != "<p>a & b</p>" || v != 7 {
		t.Fatalf("GET: %q at %d", got, v)
	}
	// PUT reaches every socket, and a stale PUT none.
	s.do("PUT", "/v1/docs/proto", `{"content":"from http","base_version":7}`).expect(t, 200, "")
	s.do("PUT", "/v1/docs/proto", `{"content":"stale","base_version":7}`).expect(t, 409, "conflict")
	for i, conn := range []*websocket.Conn{a, b, c} {
		if m := readDoc(t, conn); !m.is("edit", "from http", 8) {
			t.Fatalf("socket %d after PUT: %s", i, m)
		}
	}
	// A socket's edit after the PUT: the stale PUT sent nothing before it.
	sendDoc(t, c, edit("nine"))
	if m := readDoc(t, c); !m.is("ack", "", 9) {
		t.Fatal(m)
	}
	for _, conn := range []*websocket.Conn{a, b} {
		if m := readDoc(t, conn); !m.is("edit", "nine", 9) {
			t.Fatal(m)
		}
	}
	// Another document's sockets hear nothing of this one.
	other := dialDoc(t, s, "proto-other", "", 0)
	s.do("PUT", "/v1/docs/proto", `{"content":"ten"}`).expect(t, 200, "")
	sendDoc(t, other, edit("mine"))
	if m := readDoc(t, other); !m.is("ack", "", 1) {
		t.Fatalf("other document's socket got %s", m)
	}
}

func TestDocsConcurrentEditsOneWinsPerVersion(t *testing.T) {
	// Ten sockets race to edit every version with base_version: exactly one
	// edit per version is stored, the others get a conflict with it.
	s := newTestServer(t)
	const n, rounds = 10, 20
	conns := make([]*websocket.Conn, n)
	for i := range conns {
		conns[i] = dialDoc(t, s, "race", "", 0)
	}
	content := func(round int64, i int) string { return fmt.Sprintf("r%d by %d", round, i) }
	for round := range int64(rounds) {
		for i, c := range conns {
			sendDoc(t, c, editAt(content(round, i), round))
		}
		// Each socket gets its own answer, and the winner's edit unless it
		// won, in either order.
		answers := make([]docMsg, n)
		edits := make([]docMsg, n)
		for i, c := range conns {
			for answers[i].Type == "" {
				if m := readDoc(t, c); m.Type == "edit" {
					edits[i] = m
				} else {
					answers[i] = m
				}
			}
		}
		winner := -1
		for i, m := range answers {
			if m.Type == "ack" {
				if winner >= 0 || !m.is("ack", "", round+1) {
					t.Fatalf("round %d: ack %s to %d, winner %d", round, m, i, winner)
				}
				winner = i
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no edit won: %v", round, answers)
		}
		won := content(round, winner)
		for i, c := range conns {
			if i == winner {
				continue
			}
			if m := answers[i]; !m.is("conflict", won, round+1) {
				t.Fatalf("round %d, socket %d: %s, want a conflict with %q", round, i, m, won)
			}
			if edits[i].Type == "" {
				edits[i] = readDoc(t, c)
			}
			if m := edits[i]; !m.is("edit", won, round+1) {
				t.Fatalf("round %d, socket %d: %s, want the edit %q", round, i, m, won)
			}
		}
		if c, v := getDoc(t, s, "race"); c != won || v != round+1 {
			t.Fatalf("round %d: stored %q at %d, winner %q", round, c, v, won)
		}
	}
}

func TestDocsHibernation(t *testing.T) {
	s := newTestServer(t, withFakeClock(durabletest.NewClock(docsStart)))
	const n = 100
	conns := make([]*websocket.Conn, n)
	for i := range conns {
		conns[i] = dialDoc(t, s, "hib", "", 0)
	}
	sendDoc(t, conns[0], edit("before"))
	readDoc(t, conns[0])
	for _, c := range conns[1:] {
		if m := readDoc(t, c); !m.is("edit", "before", 1) {
			t.Fatal(m)
		}
	}

	// A socket of another document, for WebSocket-level pings.
	pinger := dialDoc(t, s, "hib-ping", "", 0)

	evictions := s.RT.Stats().Evictions
	s.evictAll(t)
	st := s.RT.Stats()
	if st.Evictions <= evictions {
		t.Fatalf("evictions %d, was %d", st.Evictions, evictions)
	}
	// The keep-alive is answered by the runtime: the document stays evicted.
	for _, c := range conns[:10] {
		sendDoc(t, c, collab.PingMessage)
		if m := readDoc(t, c); !m.is("pong", "", 0) {
			t.Fatal(m)
		}
	}
	// So are ping frames of the WebSocket protocol.
	pctx := pinger.CloseRead(context.Background())
	for range 3 {
		ctx, cancel := context.WithTimeout(pctx, 10*time.Second)
		err := pinger.Ping(ctx)
		cancel()
		if err != nil {
			t.Fatalf("ping frame: %v", err)
		}
	}
	if got := s.RT.Stats(); got.Activations != st.Activations || got.ActiveObjects != 0 {
		t.Fatalf("pings woke the document: activations %d → %d, %d active", st.Activations, got.Activations, got.ActiveObjects)
	}

	// The next edit re-creates the document, which finds all its sockets.
	sendDoc(t, conns[0], editAt("after", 1))
	if m := readDoc(t, conns[0]); !m.is("ack", "", 2) {
		t.Fatal(m)
	}
	var wg sync.WaitGroup
	for i, c := range conns[1:] {
		wg.Go(func() {
			m, err := readDocErr(c)
			if err != nil || !m.is("edit", "after", 2) {
				t.Errorf("client %d: %s %v", i+1, m, err)
			}
		})
	}
	wg.Wait()
	if got := s.RT.Stats().Activations; got != st.Activations+1 {
		t.Fatalf("activations %d → %d, want one more", st.Activations, got)
	}

	// Again, with an HTTP write while everything is evicted, and a socket
	// that connects to the evicted document.
	s.evictAll(t)
	s.do("PUT", "/v1/docs/hib", `{"content":"via http","base_version":2}`).expect(t, 200, "")
	for _, c := range conns {
		if m := readDoc(t, c); !m.is("edit", "via http", 3) {
			t.Fatal(m)
		}
	}
	s.evictAll(t)
	late := dialDoc(t, s, "hib", "via http", 3)
	sendDoc(t, late, edit("late"))
	if m := readDoc(t, late); !m.is("ack", "", 4) {
		t.Fatal(m)
	}
	if m := readDoc(t, conns[n-1]); !m.is("edit", "late", 4) {
		t.Fatal(m)
	}
}

// docInfo asks document id what the runtime holds for it.
func docInfo(t *testing.T, s *testServer, id string) collab.Info {
	t.Helper()
	ns, ok := s.RT.Namespace(collab.Class)
	if !ok {
		t.Fatal("collab class not registered")
	}
	info, err := durable.Call[collab.Info](context.Background(), ns.GetByName(id), "Info", nil)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func TestDocsAutoResponseClearedWithLastSocket(t *testing.T) {
	s := newTestServer(t, withFakeClock(durabletest.NewClock(docsStart)))
	a := dialDoc(t, s, "pong", "", 0)
	b := dialDoc(t, s, "pong", "", 0)
	if got := docInfo(t, s, "pong"); got != (collab.Info{Sockets: 2, AutoResponse: true}) {
		t.Fatalf("with two sockets: %+v", got)
	}
	a.Close(websocket.StatusNormalClosure, "")
	// The server answers the close handshake before its close event has
	// reached the document.
	docsPoll(t, "the first socket's close event", func() bool { return docInfo(t, s, "pong").Sockets == 1 })
	if got := docInfo(t, s, "pong"); got.Sockets != 1 || !got.AutoResponse {
		t.Fatalf("with one socket: %+v", got)
	}
	b.Close(websocket.StatusNormalClosure, "")
	// The close event of the last socket clears the pair: the runtime keeps
	// nothing for a document without sockets.
	docsPoll(t, "the auto-response to be cleared", func() bool {
		return docInfo(t, s, "pong") == collab.Info{}
	})
	// The next connect sets it again, and it works with the document evicted.
	c := dialDoc(t, s, "pong", "", 0)
	s.evictAll(t)
	activations := s.RT.Stats().Activations
	sendDoc(t, c, collab.PingMessage)
	if m := readDoc(t, c); !m.is("pong", "", 0) {
		t.Fatal(m)
	}
	if s.RT.Stats().Activations != activations {
		t.Fatal("ping woke the document")
	}
}

func TestDocsSurviveRestart(t *testing.T) {
	s := newTestServer(t)
	dir := s.Dir
	s.do("PUT", "/v1/docs/keep", `{"content":"first"}`).expect(t, 200, "")
	c := dialDoc(t, s, "keep", "first", 1)
	sendDoc(t, c, editAt("second", 1))
	if m := readDoc(t, c); !m.is("ack", "", 2) {
		t.Fatal(m)
	}
	// The shutdown closes the socket with 1001 (read meanwhile, so the
	// close handshake completes).
	closed := make(chan error, 1)
	go func() {
		_, err := readDocErr(c)
		closed <- err
	}()
	s.Close()
	if err := <-closed; websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Fatalf("socket at shutdown: %v", err)
	}

	s2 := newTestServer(t, withRuntime(func(rt *durable.Runtime) { rt.Dir = dir }))
	if got, v := getDoc(t, s2, "keep"); got != "second" || v != 2 {
		t.Fatalf("after restart: %q at %d", got, v)
	}
	c2 := dialDoc(t, s2, "keep", "second", 2)
	sendDoc(t, c2, editAt("third", 2))
	if m := readDoc(t, c2); !m.is("ack", "", 3) {
		t.Fatal(m)
	}
}

func TestDocsClientThatDoesNotReadIsDisconnected(t *testing.T) {
	s := newTestServer(t, withRuntime(func(rt *durable.Runtime) {
		rt.WebSocketSendQueue = 32
		rt.WebSocketSendBytes = 256 << 10
	}))
	// The stuck client never reads after init, and its receive buffer is
	// small, so its TCP buffers fill quickly.
	stuck := dialDocRaw(t, docURL(s, "slow"), &websocket.DialOptions{HTTPClient: &http.Client{
		Transport: &http.Transport{DialContext: (&net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
			return c.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		}}).DialContext},
	}})
	if m := readDoc(t, stuck); !m.is("init", "", 0) {
		t.Fatal(m)
	}
	writer := dialDoc(t, s, "slow", "", 0)
	reader := dialDoc(t, s, "slow", "", 0)
	// Edits of 64 KiB until the server drops the stuck client (1000 edits,
	// 64 MiB, would be far past every buffer); the reader gets every one.
	dropped := false
	edits := 0
	for !dropped {
		if edits == 1000 {
			t.Fatal("the stuck client was not disconnected")
		}
		edits++
		content := fmt.Sprintf("%06d", edits) + strings.Repeat("x", 64<<10)
		sendDoc(t, writer, edit(content))
		if m := readDoc(t, writer); !m.is("ack", "", int64(edits)) {
			t.Fatalf("edit %d: %.100s", edits, m.Raw)
		}
		if m := readDoc(t, reader); !m.is("edit", content, int64(edits)) {
			t.Fatalf("reader, edit %d: %.100s", edits, m.Raw)
		}
		dropped = docInfo(t, s, "slow").Sockets == 2
	}
	t.Logf("stuck client dropped after %d edits of 64 KiB", edits)
	// It ends with a close frame (1008) when its queue overflowed, or by
	// the connection closing if a write timed out halfway through a frame.
	var err error
	for err == nil {
		_, err = readDocErr(stuck)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the stuck client is still connected: %v", err)
	}
	if got := websocket.CloseStatus(err); got != websocket.StatusPolicyViolation && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		t.Fatalf("stuck client ended with %v (%v), want 1008 or a dropped connection", got, err)
	}
	// The document goes on.
	sendDoc(t, writer, edit("after"))
	readDoc(t, writer)
	if m := readDoc(t, reader); !m.is("edit", "after", int64(edits+1)) {
		t.Fatalf("after the stuck client: %.100s", m.Raw)
	}
}

// TestDocsSurviveSIGKILL runs `durable serve` in a child process, kills it
// with SIGKILL while edits stream in, and checks that every acknowledged
// edit is there after a restart on the same data directory.
func TestDocsSurviveSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the durable binary")
	}
	bin := buildDurable(t)
	dir := t.TempDir()

	srv := startServe(t, bin, dir)
	put := func(base string, content string) {
		req, _ := http.NewRequest("PUT", base+"/v1/docs/crash", strings.NewReader(`{"content":"`+content+`"}`))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("PUT: %d", resp.StatusCode)
		}
	}
	put(srv.url, "edit v1")
	c := dialDocRaw(t, "ws"+strings.TrimPrefix(srv.url, "http")+"/v1/docs/crash", nil)
	if m := readDoc(t, c); !m.is("init", "edit v1", 1) {
		t.Fatal(m)
	}
	// Edits stream without waiting for acks; the k-th gets version k+1.
	var acked atomic.Int64
	acked.Store(1)
	stop := make(chan struct{})
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for k := int64(1); ; k++ {
			select {
			case <-stop:
				return
			default:
			}
			b, _ := json.Marshal(edit(fmt.Sprintf("edit v%d", k+1)))
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := c.Write(ctx, websocket.MessageText, b)
			cancel()
			if err != nil {
				return
			}
		}
	}()
	for acked.Load() < 300 {
		m, err := readDocErr(c)
		if err != nil {
			t.Fatalf("reading acks: %v", err)
		}
		if m.Type != "ack" || m.Version != acked.Load()+1 {
			t.Fatalf("got %s after ack %d", m, acked.Load())
		}
		acked.Store(m.Version)
	}
	srv.kill(t)
	close(stop)
	<-sent
	last := acked.Load()

	srv2 := startServe(t, bin, dir)
	resp, err := http.Get(srv2.url + "/v1/docs/crash")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Content string `json:"content"`
		Version int64  `json:"version"`
	}
	err = json.NewDecoder(resp.Body).Decode(&d)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if d.Version < last || d.Content != fmt.Sprintf("edit v%d", d.Version) {
		t.Fatalf("after SIGKILL: %q at version %d; last acknowledged version %d", d.Content, d.Version, last)
	}
	t.Logf("last acknowledged version %d, found %d after SIGKILL", last, d.Version)
	c2 := dialDocRaw(t, "ws"+strings.TrimPrefix(srv2.url, "http")+"/v1/docs/crash", nil)
	if m := readDoc(t, c2); !m.is("init", d.Content, d.Version) {
		t.Fatal(m)
	}
	c2.CloseNow()
	srv2.stop(t)
}

// buildDurable builds cmd/durable into a temporary directory.
func buildDurable(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "durable")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/durableobjects/durable/cmd/durable")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

type serveProcess struct {
	cmd  *exec.Cmd
	url  string
	done chan error
}

// startServe starts `durable serve` on a free port and waits until it listens.
func startServe(t *testing.T, bin, dir string, extra ...string) *serveProcess {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve", "--addr", "127.0.0.1:0", "--data", dir}, extra...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &serveProcess{cmd: cmd, done: make(chan error, 1)}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if i := strings.Index(line, "msg=listening addr="); i >= 0 {
				a, _, _ := strings.Cut(line[i+len("msg=listening addr="):], " ")
				select {
				case addr <- a:
				default:
				}
			}
		}
		io.Copy(io.Discard, stderr)
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
		p.done <- nil
	})
	select {
	case a := <-addr:
		p.url = "http://" + a
	case err := <-p.done:
		p.done <- err
		t.Fatalf("durable serve exited: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("durable serve did not start listening")
	}
	return p
}

func (p *serveProcess) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := <-p.done
	p.done <- err
}

// stop sends SIGTERM and expects a clean exit.
func (p *serveProcess) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			t.Fatalf("durable serve after SIGTERM: %v", err)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("durable serve did not stop after SIGTERM")
	}
}

func TestHeaderHasToken(t *testing.T) {
	for _, tc := range []struct {
		values []string
		want   bool
	}{
		{[]string{"Upgrade"}, true},
		{[]string{"keep-alive, UPGRADE"}, true},
		{[]string{"keep-alive", " upgrade "}, true},
		{[]string{"keep-alive"}, false},
		{[]string{"upgrades"}, false},
		{nil, false},
	} {
		h := http.Header{"Connection": tc.values}
		if got := headerHasToken(h, "Connection", "upgrade"); got != tc.want {
			t.Errorf("%q: %v, want %v", tc.values, got, tc.want)
		}
	}
}

func TestDocsMessageLimits(t *testing.T) {
	// Content over 1 MiB in a message the runtime accepts is an error
	// message; a message over the runtime's MaxWebSocketMessage closes the
	// socket with 1009.
	s := newTestServer(t, withRuntime(func(rt *durable.Runtime) { rt.MaxWebSocketMessage = 2 << 20 }))
	c := dialDoc(t, s, "limits", "", 0)
	sendDoc(t, c, edit(strings.Repeat("m", collab.MaxContent+1)))
	if m := readDoc(t, c); !m.is("error", "", 0) {
		t.Fatalf("content over 1 MiB: %.100s", m.Raw)
	}
	sendDoc(t, c, strings.Repeat(" ", 2<<20-2)+"{}")
	if m := readDoc(t, c); !m.is("error", "", 0) {
		t.Fatalf("a message of exactly the limit: %.100s", m.Raw)
	}
	sendDoc(t, c, edit(strings.Repeat("m", 2<<20)))
	_, err := readDocErr(c)
	if got := websocket.CloseStatus(err); got != websocket.StatusMessageTooBig {
		t.Fatalf("message over the runtime's limit: %v (%v), want 1009", got, err)
	}
}
