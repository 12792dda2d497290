package collab

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/durableobjects/durable"
	"github.com/durableobjects/durable/durabletest"
)

// harness is a runtime with the document class, served over loopback by a
// handler that connects /{id} to document id.
type harness struct {
	rt     *durable.Runtime
	docs   *Client
	clock  *durabletest.Clock
	wsURL  string
	srv    *http.Server
	closed bool
}

func newHarness(tb testing.TB, configure func(*durable.Runtime)) *harness {
	tb.Helper()
	h := &harness{clock: durabletest.NewClock(time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC))}
	h.rt = durable.NewRuntime(tb.TempDir())
	h.rt.Clock = h.clock
	if configure != nil {
		configure(h.rt)
	}
	var err error
	if h.docs, err = Register(h.rt); err != nil {
		tb.Fatal(err)
	}
	if err := h.rt.Open(); err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	h.wsURL = "ws://" + ln.Addr().String()
	h.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h.docs.Connect(w, r, strings.TrimPrefix(r.URL.Path, "/")); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		}
	})}
	go h.srv.Serve(ln)
	tb.Cleanup(h.close)
	return h
}

func (h *harness) close() {
	if h.closed {
		return
	}
	h.closed = true
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h.srv.Shutdown(ctx)
	h.rt.Close(ctx)
}

// evict moves the clock past the idle timeout until no object is in memory.
func (h *harness) evict(tb testing.TB) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for h.rt.Stats().ActiveObjects != 0 {
		if time.Now().After(deadline) {
			tb.Fatal("objects not evicted")
		}
		h.clock.Advance(h.rt.IdleTimeout + time.Second)
		time.Sleep(time.Millisecond)
	}
}

func (h *harness) dial(tb testing.TB, id string) *websocket.Conn {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, h.wsURL+"/"+id, nil)
	if err != nil {
		tb.Fatal(err)
	}
	c.SetReadLimit(16 << 20)
	tb.Cleanup(func() { c.CloseNow() })
	return c
}

func read(tb testing.TB, c *websocket.Conn) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, b, err := c.Read(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

func write(tb testing.TB, c *websocket.Conn, s string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(s)); err != nil {
		tb.Fatal(err)
	}
}

func ptr[T any](v T) *T { return &v }

func TestGetPut(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	d, err := h.docs.Get(ctx, "a")
	if err != nil || d != (Document{}) {
		t.Fatalf("new document: %+v, %v", d, err)
	}
	// Reading and connecting write nothing: no file for the document.
	c := h.dial(t, "a")
	if got := read(t, c); got != `{"type":"init","content":"","version":0}` {
		t.Fatalf("init %s", got)
	}
	if _, err := os.Stat(filepath.Join(h.rt.Dir, Class)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a document never written has files: %v", err)
	}

	for i, tc := range []struct {
		content string
		base    *int64
		want    int64
		err     error
	}{
		{"one", nil, 1, nil},
		{"two", ptr[int64](1), 2, nil},
		{"stale", ptr[int64](1), 0, ErrConflict},
		{"future", ptr[int64](3), 0, ErrConflict},
		{"negative", ptr[int64](-1), 0, ErrConflict},
		{strings.Repeat("x", MaxContent+1), nil, 0, ErrTooLarge},
		{strings.Repeat("x", MaxContent), ptr[int64](2), 3, nil},
		{"", nil, 4, nil},
	} {
		v, err := h.docs.Put(ctx, "a", tc.content, tc.base)
		if !errors.Is(err, tc.err) || v != tc.want {
			t.Fatalf("put %d: %d, %v; want %d, %v", i, v, err, tc.want, tc.err)
		}
		if err == nil {
			want := `{"type":"edit","content":` + string(must(json.Marshal(tc.content))) + `,"version":` + string(must(json.Marshal(v))) + `}`
			if got := read(t, c); got != want {
				t.Fatalf("put %d broadcast %.100s", i, got)
			}
		}
	}
	if d, err := h.docs.Get(ctx, "a"); err != nil || d != (Document{Content: "", Version: 4}) {
		t.Fatalf("after puts: %+v, %v", d, err)
	}
	// The error names the document.
	if _, err := h.docs.Put(ctx, "named", "x", ptr[int64](7)); err == nil || !strings.Contains(err.Error(), `"named"`) {
		t.Fatalf("error %v does not name the document", err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestStateSurvivesEvictionAndRestart(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	if _, err := h.docs.Put(ctx, "kept", "<p>kept</p>", nil); err != nil {
		t.Fatal(err)
	}
	h.evict(t)
	activations := h.rt.Stats().Activations
	if d, err := h.docs.Get(ctx, "kept"); err != nil || d != (Document{"<p>kept</p>", 1}) {
		t.Fatalf("after eviction: %+v, %v", d, err)
	}
	if h.rt.Stats().Activations != activations+1 {
		t.Fatal("the document was not evicted")
	}
	dir := h.rt.Dir
	h.close()

	h2 := newHarness(t, func(rt *durable.Runtime) { rt.Dir = dir })
	if d, err := h2.docs.Get(ctx, "kept"); err != nil || d != (Document{"<p>kept</p>", 1}) {
		t.Fatalf("after restart: %+v, %v", d, err)
	}
	if v, err := h2.docs.Put(ctx, "kept", "again", ptr[int64](1)); err != nil || v != 2 {
		t.Fatalf("put after restart: %d, %v", v, err)
	}
}

func TestWebSocketSession(t *testing.T) {
	h := newHarness(t, nil)
	a, b := h.dial(t, "s"), h.dial(t, "s")
	read(t, a)
	read(t, b)
	for _, step := range []struct {
		conn      *websocket.Conn
		send      string
		reply     string
		broadcast string // what the other socket gets, if anything
	}{
		{a, `{"type":"edit","content":"x & <y>"}`, `{"type":"ack","version":1}`, `{"type":"edit","content":"x & <y>","version":1}`},
		{b, `{"type":"edit","content":"z","base_version":0}`, `{"type":"conflict","content":"x & <y>","version":1}`, ""},
		{b, `{"base_version":1,"content":"z","type":"edit"}`, `{"type":"ack","version":2}`, `{"type":"edit","content":"z","version":2}`},
		{a, `{"type":"edit","content":"\u00e9\ud83d\ude00"}`, `{"type":"ack","version":3}`, `{"type":"edit","content":"é😀","version":3}`},
		{a, PingMessage, PongMessage, ""},
		{a, `{"type": "ping"}`, PongMessage, ""},
		{a, `{"type":"edit","content":7}`, `{"type":"error","message":"field content must be a string, got the number 7"}`, ""},
	} {
		write(t, step.conn, step.send)
		if got := read(t, step.conn); got != step.reply {
			t.Fatalf("%s: got %s, want %s", step.send, got, step.reply)
		}
		if step.broadcast != "" {
			other := a
			if step.conn == a {
				other = b
			}
			if got := read(t, other); got != step.broadcast {
				t.Fatalf("%s: other got %s, want %s", step.send, got, step.broadcast)
			}
		}
	}
	if info, err := h.docs.Info(context.Background(), "s"); err != nil || info != (Info{Sockets: 2, AutoResponse: true}) {
		t.Fatalf("info %+v, %v", info, err)
	}
}

func TestSocketLimitAnswersInAPIForm(t *testing.T) {
	h := newHarness(t, func(rt *durable.Runtime) { rt.MaxWebSockets = 1 })
	read(t, h.dial(t, "full"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, resp, err := websocket.Dial(ctx, h.wsURL+"/full", nil)
	if err == nil || resp == nil || resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("second socket on a document limited to one: %v", err)
	}
	// A request that is no upgrade.
	r, err := http.Get("http" + strings.TrimPrefix(h.wsURL, "ws") + "/plain")
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Error struct{ Code, Message string }
	}
	json.NewDecoder(r.Body).Decode(&body)
	r.Body.Close()
	if r.StatusCode != 400 || body.Error.Code != "invalid_argument" || r.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("plain GET: %d %+v", r.StatusCode, body)
	}
}

func TestParseMessage(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want clientMsg
		err  string // a substring of the error; "" for none
	}{
		{`{"type":"edit","content":"x"}`, clientMsg{Type: "edit", Content: "x"}, ""},
		{` {"content":"","type":"edit","base_version":0} `, clientMsg{Type: "edit", BaseVersion: ptr[int64](0)}, ""},
		{`{"type":"edit","content":"x","base_version":null}`, clientMsg{Type: "edit", Content: "x"}, ""},
		{`{"type":"edit","content":"x","base_version":-3}`, clientMsg{Type: "edit", Content: "x", BaseVersion: ptr[int64](-3)}, ""},
		{`{"type":"edit","content":"x","base_version":9223372036854775807}`, clientMsg{Type: "edit", Content: "x", BaseVersion: ptr[int64](1<<63 - 1)}, ""},
		{`{"type":"ping"}`, clientMsg{Type: "ping"}, ""},
		{`{"type":"edit","content":"a","content":"b"}`, clientMsg{Type: "edit", Content: "b"}, ""},
		{``, clientMsg{}, "malformed JSON"},
		{`{`, clientMsg{}, "malformed JSON"},
		{`{"type":"edit","content":"x"}x`, clientMsg{}, "malformed JSON"},
		{`{"type":"edit","content":"x"}{}`, clientMsg{}, "malformed JSON"},
		{`[]`, clientMsg{}, "JSON object"},
		{`"s"`, clientMsg{}, "JSON object"},
		{`null`, clientMsg{}, "JSON object"},
		{`{}`, clientMsg{}, "type is required"},
		{`{"type":"Edit","content":"x"}`, clientMsg{}, "unknown message type"},
		{`{"type":"ack","version":1}`, clientMsg{}, `unknown field "version"`},
		{`{"type":"ack"}`, clientMsg{}, "unknown message type"},
		{`{"type":1}`, clientMsg{}, "field type must be a string, got the number 1"},
		{`{"type":null}`, clientMsg{}, "field type must be a string, got null"},
		{`{"type":"edit"}`, clientMsg{}, "content is required"},
		{`{"type":"edit","content":null}`, clientMsg{}, "must be a string, got null"},
		{`{"type":"edit","content":false}`, clientMsg{}, "must be a string, got a boolean"},
		{`{"type":"edit","content":{}}`, clientMsg{}, "must be a string, got an object"},
		{`{"type":"edit","content":[]}`, clientMsg{}, "must be a string, got an array"},
		{`{"type":"edit","content":"x","base_version":"1"}`, clientMsg{}, "base_version must be an integer, got a string"},
		{`{"type":"edit","content":"x","base_version":1.0}`, clientMsg{}, "base_version must be an integer, got the number 1.0"},
		{`{"type":"edit","content":"x","base_version":1e2}`, clientMsg{}, "must be an integer"},
		{`{"type":"edit","content":"x","base_version":9223372036854775808}`, clientMsg{}, "must be an integer"},
		{`{"type":"edit","content":"x","Base_Version":1}`, clientMsg{}, `unknown field "Base_Version"`},
		{`{"type":"edit","content":"x","b":1,"a":2}`, clientMsg{}, `unknown field "a"`},
		{`{"type":"ping","content":"x"}`, clientMsg{}, "no other field"},
		{"{\"type\":\"edit\",\"content\":\"bad\xffbyte\"}", clientMsg{}, "not valid UTF-8"},
		{`{"type":"edit","content":"half \udc00 a pair"}`, clientMsg{}, "half of a surrogate pair"},
		{`{"type":"edit","content":"a pair \ud83d\ude00"}`, clientMsg{Type: "edit", Content: "a pair 😀"}, ""},
		{`{"type":"edit","content":"` + strings.Repeat("x", MaxContent+1) + `"}`, clientMsg{}, "over 1048576"},
		{`{"type":"edit","content":"` + strings.Repeat(`\u00e9`, MaxContent/2+1) + `"}`, clientMsg{}, "over"},
	} {
		got, err := parseMessage([]byte(tc.in))
		in := tc.in
		if len(in) > 80 {
			in = in[:80] + "…"
		}
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want one with %q", in, err, tc.err)
			}
			continue
		}
		if err != nil || got.Type != tc.want.Type || got.Content != tc.want.Content ||
			(got.BaseVersion == nil) != (tc.want.BaseVersion == nil) ||
			got.BaseVersion != nil && *got.BaseVersion != *tc.want.BaseVersion {
			t.Errorf("%s: %+v, %v; want %+v", in, got, err, tc.want)
		}
	}
	// Exactly MaxContent bytes is fine, counted after decoding.
	if m, err := parseMessage([]byte(`{"type":"edit","content":"` + strings.Repeat(`\u00e9`, MaxContent/2) + `"}`)); err != nil || len(m.Content) != MaxContent {
		t.Fatalf("1 MiB of é: %d bytes, %v", len(m.Content), err)
	}
}

func FuzzParseMessage(f *testing.F) {
	for _, s := range []string{
		`{"type":"edit","content":"x"}`, `{"type":"edit","content":"x","base_version":3}`, `{"type":"ping"}`,
		`{"type":"edit","content":"\u00e9"}`, `[]`, `{`, `{"type":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseMessage(data)
		if err != nil {
			return
		}
		// Whatever is accepted is valid JSON, an object with a known type,
		// and content within the limit.
		if !json.Valid(data) || (m.Type != "edit" && m.Type != "ping") || len(m.Content) > MaxContent {
			t.Fatalf("accepted %q as %+v", data, m)
		}
		if m.Type == "ping" && (m.Content != "" || m.BaseVersion != nil) {
			t.Fatalf("ping with fields: %q", data)
		}
	})
}
