package durable_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/durableobjects/durable"
	"github.com/durableobjects/durable/durabletest"
)

// room is a chat object: it accepts sockets (tags from ?tag=), counts
// messages in storage and broadcasts each to the other sockets.
type room struct {
	st     *durable.State
	closes chan string
	slow   chan struct{} // "slow" messages wait on it
}

func (r *room) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	ws, err := r.st.AcceptWebSocket(w, req, req.URL.Query()["tag"]...)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if req.URL.Query().Has("fail") {
		panic("failing after AcceptWebSocket")
	}
	ws.SendText("welcome " + ws.ID())
}

func (r *room) WebSocketMessage(ctx context.Context, ws *durable.WebSocket, typ durable.MessageType, data []byte) error {
	msg := string(data)
	s := r.st.Storage()
	switch {
	case msg == "setauto":
		return r.st.SetWebSocketAutoResponse("ping", "pong")
	case strings.HasPrefix(msg, "attach "):
		return ws.SetAttachment([]byte(strings.TrimPrefix(msg, "attach ")))
	case msg == "attachment":
		return ws.SendText("attachment " + string(ws.Attachment()))
	case strings.HasPrefix(msg, "tag "):
		return ws.SendText(fmt.Sprint(len(r.st.WebSockets(strings.TrimPrefix(msg, "tag ")))))
	case msg == "close then send", msg == "close then panic":
		if err := ws.Close(4000, "bye"); err != nil {
			return err
		}
		err := ws.SendText("after the close")
		r.closes <- fmt.Sprintf("send after close: %v", err)
		if msg == "close then panic" {
			panic("after closing")
		}
		return nil
	case strings.HasPrefix(msg, "close "):
		var code int
		var reason string
		fmt.Sscanf(msg, "close %d %s", &code, &reason)
		if err := ws.Close(code, reason); err != nil {
			return ws.SendText("refused: " + err.Error())
		}
		return nil
	case msg == "slow":
		if r.slow != nil {
			<-r.slow
		}
		return nil
	case strings.HasPrefix(msg, "big "):
		n, _ := strconv.Atoi(strings.TrimPrefix(msg, "big "))
		for _, other := range r.st.WebSockets("") {
			for range n {
				other.Send(durable.MessageBinary, make([]byte, 64<<10))
			}
		}
		return nil
	}
	n, _, err := durable.Get[int](s, "messages")
	if err != nil {
		return err
	}
	if err := durable.Put(s, "messages", n+1); err != nil {
		return err
	}
	for _, other := range r.st.WebSockets("") {
		if other.ID() != ws.ID() {
			other.SendText(msg)
		}
	}
	return ws.SendText("ack " + strconv.Itoa(n+1))
}

func (r *room) WebSocketClose(ctx context.Context, ws *durable.WebSocket, code int, reason string, clean bool) error {
	if r.closes != nil {
		r.closes <- fmt.Sprintf("%d %s %v", code, reason, clean)
	}
	return nil
}

type wsHarness struct {
	rt      *durable.Runtime
	ns      *durable.Namespace
	url     string
	clock   *durabletest.Clock
	created atomic.Int64
	closes  chan string
	slow    chan struct{}
	srv     *http.Server
	mu      sync.Mutex
	conns   []*websocket.Conn
}

func newWSHarness(t *testing.T, configure func(*durable.Runtime)) *wsHarness {
	t.Helper()
	h := &wsHarness{clock: durabletest.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)), closes: make(chan string, 1000), slow: make(chan struct{})}
	h.rt = durable.NewRuntime(t.TempDir())
	h.rt.Clock = h.clock
	if configure != nil {
		configure(h.rt)
	}
	var err error
	h.ns, err = h.rt.Register("room", func(st *durable.State) any {
		h.created.Add(1)
		return &room{st: st, closes: h.closes, slow: h.slow}
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.rt.Open(); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.url = "ws://" + ln.Addr().String()
	h.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ns.GetByName(strings.TrimPrefix(r.URL.Path, "/")).ServeHTTP(w, r)
	})}
	go h.srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		h.mu.Lock()
		for _, c := range h.conns {
			c.CloseNow() // clients gone first: no close handshake to wait for
		}
		h.mu.Unlock()
		h.srv.Shutdown(ctx)
		h.rt.Close(ctx)
	})
	return h
}

// dial connects to a room and reads its welcome.
func (h *wsHarness) dial(t *testing.T, room string, tags ...string) *websocket.Conn {
	t.Helper()
	u := h.url + "/" + room
	for i, tag := range tags {
		u += map[bool]string{true: "?", false: "&"}[i == 0] + "tag=" + tag
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadLimit(64 << 20)
	h.mu.Lock()
	h.conns = append(h.conns, c)
	h.mu.Unlock()
	if got := readText(t, c); !strings.HasPrefix(got, "welcome ") {
		t.Fatalf("first message %q", got)
	}
	return c
}

func readText(t *testing.T, c *websocket.Conn) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(b)
}

func writeText(t *testing.T, c *websocket.Conn, s string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(s)); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// evict moves the clock past the idle timeout until the room is out of memory.
func (h *wsHarness) evict(t *testing.T) {
	t.Helper()
	waitFor(t, "room evicted", func() bool {
		h.clock.Advance(durable.DefaultIdleTimeout + time.Second)
		durable.EvictIdle(h.rt)
		return durable.ActiveObjects(h.rt) == 0
	})
}

func TestHibernationKeepsSocketsAcrossEviction(t *testing.T) {
	h := newWSHarness(t, nil)
	const n = 100
	conns := make([]*websocket.Conn, n)
	for i := range conns {
		conns[i] = h.dial(t, "doc")
	}
	created := h.created.Load()
	h.evict(t)

	writeText(t, conns[0], "hello after hibernation")
	if got := readText(t, conns[0]); got != "ack 1" {
		t.Fatalf("sender got %q", got)
	}
	var wg sync.WaitGroup
	for i := 1; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, b, err := conns[i].Read(ctx)
			if err != nil || string(b) != "hello after hibernation" {
				t.Errorf("client %d: %q %v", i, b, err)
			}
		}()
	}
	wg.Wait()
	if got := h.created.Load(); got != created+1 {
		t.Fatalf("constructor ran %d times after eviction, want 1", got-created)
	}
}

func TestAutoResponseDoesNotWakeTheObject(t *testing.T) {
	h := newWSHarness(t, nil)
	c := h.dial(t, "auto")
	writeText(t, c, "setauto")
	writeText(t, c, "x") // a round trip, so setauto has run
	if got := readText(t, c); got != "ack 1" {
		t.Fatal(got)
	}
	h.evict(t)
	created := h.created.Load()
	before := h.clock.Now()
	for range 3 {
		writeText(t, c, "ping")
		if got := readText(t, c); got != "pong" {
			t.Fatalf("auto response %q", got)
		}
	}
	if h.created.Load() != created || durable.ActiveObjects(h.rt) != 0 {
		t.Fatal("the automatic response woke the object")
	}
	// The next real message wakes it, and it sees when the last ping was answered.
	writeText(t, c, "y")
	if got := readText(t, c); got != "ack 2" {
		t.Fatal(got)
	}
	_ = before
}

func TestAttachmentSurvivesHibernation(t *testing.T) {
	h := newWSHarness(t, nil)
	c := h.dial(t, "att")
	writeText(t, c, "attach user=ada")
	writeText(t, c, "attachment")
	if got := readText(t, c); got != "attachment user=ada" {
		t.Fatal(got)
	}
	h.evict(t)
	writeText(t, c, "attachment")
	if got := readText(t, c); got != "attachment user=ada" {
		t.Fatalf("after hibernation: %q", got)
	}
}

func TestSocketsByTag(t *testing.T) {
	h := newWSHarness(t, nil)
	a := h.dial(t, "tags", "red", "blue")
	h.dial(t, "tags", "red")
	h.dial(t, "tags")
	for tag, want := range map[string]string{"red": "2", "blue": "1", "green": "0"} {
		writeText(t, a, "tag "+tag)
		if got := readText(t, a); got != want {
			t.Fatalf("sockets tagged %s: %s, want %s", tag, got, want)
		}
	}
	// 10 distinct tags are accepted however often they repeat, and a
	// 256-byte tag; 11 distinct tags, a 257-byte tag or an empty tag (one
	// WebSockets could not select) are refused.
	many := make([]string, 11)
	for i := range many {
		many[i] = fmt.Sprint("t", i)
	}
	repeated := append(slices.Repeat([]string{"same"}, 20), many[:9]...)
	h.dial(t, "tags", repeated...)
	h.dial(t, "tags", strings.Repeat("x", 256))
	writeText(t, a, "tag same")
	if got := readText(t, a); got != "1" {
		t.Fatalf("sockets tagged same: %s, want 1", got)
	}
	for _, tags := range [][]string{many, {strings.Repeat("x", 257)}, {"red", ""}} {
		u := h.url + "/tags?tag=" + strings.Join(tags, "&tag=")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, resp, err := websocket.Dial(ctx, u, nil)
		cancel()
		if err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("bad tags accepted: %v", err)
		}
	}
}

func TestSocketLimitPerObject(t *testing.T) {
	h := newWSHarness(t, func(rt *durable.Runtime) { rt.MaxWebSockets = 2 })
	h.dial(t, "full")
	h.dial(t, "full")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, resp, err := websocket.Dial(ctx, h.url+"/full", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("third socket on an object limited to 2: %v", err)
	}
}

// A socket accepted by an event that then fails is never connected, and
// is forgotten: it neither counts against the object's limit nor shows in
// WebSockets.
func TestSocketOfAFailedEventIsForgotten(t *testing.T) {
	h := newWSHarness(t, func(rt *durable.Runtime) { rt.MaxWebSockets = 2 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range 3 {
		_, resp, err := websocket.Dial(ctx, h.url+"/failing?fail=1", nil)
		if err == nil || resp == nil || resp.StatusCode != http.StatusInternalServerError {
			t.Fatalf("upgrade by a failing event: %v", err)
		}
	}
	h.dial(t, "failing")
	c := h.dial(t, "failing")
	writeText(t, c, "tag ")
	if got := readText(t, c); got != "2" {
		t.Fatalf("WebSockets() after 3 failed upgrades and 2 good ones = %s, want 2", got)
	}
}

// An object closes a socket with a code and reason that fit a close frame;
// anything else is refused with ErrBadClose and leaves the socket open.
func TestServerCloseArguments(t *testing.T) {
	h := newWSHarness(t, nil)
	c := h.dial(t, "closing")
	for _, bad := range []string{"close 1005 x", "close 1006 x", "close 999 x", "close 2999 x", "close 5000 x", "close 4000 " + strings.Repeat("r", 124)} {
		writeText(t, c, bad)
		if got := readText(t, c); !strings.HasPrefix(got, "refused: durable: invalid WebSocket close") {
			t.Errorf("%.20s: %q", bad, got)
		}
	}
	writeText(t, c, "close 4000 "+strings.Repeat("r", 123))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _, err := c.Read(ctx)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 4000 || ce.Reason != strings.Repeat("r", 123) {
		t.Fatalf("after a valid close: %v", err)
	}
}

// A socket the running event closed takes no more messages
// (ErrSocketClosed), though its close waits for the event's writes; if the
// event fails, the close is dropped with its sends and the socket stays
// open.
func TestSendAfterCloseInTheSameEvent(t *testing.T) {
	h := newWSHarness(t, nil)
	c := h.dial(t, "closing")
	writeText(t, c, "close then panic")
	if got := <-h.closes; got != "send after close: "+durable.ErrSocketClosed.Error() {
		t.Fatalf("%s, want ErrSocketClosed", got)
	}
	writeText(t, c, "hello") // the socket is open: the failed event's close was dropped
	if got := readText(t, c); got != "ack 1" {
		t.Fatalf("after a failed event's close: %q", got)
	}
	writeText(t, c, "close then send")
	if got := <-h.closes; got != "send after close: "+durable.ErrSocketClosed.Error() {
		t.Fatalf("%s, want ErrSocketClosed", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _, err := c.Read(ctx)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 4000 {
		t.Fatalf("after close then send: %v, want the close 4000 and no message", err)
	}
}

func TestCloseEventReachesObject(t *testing.T) {
	h := newWSHarness(t, nil)
	c := h.dial(t, "closer")
	c.Close(4001, "bye now")
	select {
	case got := <-h.closes:
		if got != "4001 bye now true" {
			t.Fatalf("close event %q", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no close event")
	}
}

func TestMessageOverLimitClosesSocket(t *testing.T) {
	h := newWSHarness(t, func(rt *durable.Runtime) { rt.MaxWebSocketMessage = 1024 })
	c := h.dial(t, "limit")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c.Write(ctx, websocket.MessageText, make([]byte, 2048))
	_, _, err := c.Read(ctx)
	if got := websocket.CloseStatus(err); got != websocket.StatusMessageTooBig {
		t.Fatalf("close status %v (%v), want 1009", got, err)
	}
}

func TestClientThatDoesNotReadIsDisconnected(t *testing.T) {
	h := newWSHarness(t, func(rt *durable.Runtime) {
		rt.WebSocketSendQueue = 32
		rt.WebSocketSendBytes = 1 << 20
		// The queue bound, not the write timeout, must be what drops the
		// stuck client (a timeout can cut a frame, leaving no close code).
		rt.WebSocketWriteTimeout = 5 * time.Minute
	})
	stuck := h.dial(t, "slow") // never reads again
	reader := h.dial(t, "slow")
	// 400 events each send 64 KiB to both clients: 25 MiB, far more than
	// the stuck client's TCP buffers and its 1 MiB queue. The reader keeps
	// up and must get every message.
	for i := range 400 {
		writeText(t, reader, "big 1")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, m, err := reader.Read(ctx)
		cancel()
		if err != nil || len(m) != 64<<10 {
			t.Fatalf("reading client, message %d: %d bytes, %v", i, len(m), err)
		}
	}
	rctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var err error
	for err == nil {
		_, _, err = stuck.Read(rctx)
	}
	if got := websocket.CloseStatus(err); got != websocket.StatusPolicyViolation {
		t.Fatalf("stuck client ended with %v (%v), want 1008", got, err)
	}
}

func TestSendsWaitForTheOutputGate(t *testing.T) {
	h := newWSHarness(t, nil)
	a := h.dial(t, "gated")
	b := h.dial(t, "gated")
	hb := holdBarrier(t, h.rt)
	writeText(t, a, "durable message") // writes "messages", then broadcasts
	r := hb.waitRound(t)
	got := make(chan string, 1)
	go func() {
		_, m, err := b.Read(context.Background())
		if err == nil {
			got <- string(m)
		}
	}()
	select {
	case m := <-got:
		t.Fatalf("%q delivered before the write it follows was durable", m)
	case <-time.After(100 * time.Millisecond):
	}
	hb.open(r)
	select {
	case m := <-got:
		if m != "durable message" {
			t.Fatal(m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("message not delivered after the sync")
	}
}

func TestShutdownClosesSocketsWith1001(t *testing.T) {
	h := newWSHarness(t, nil)
	c := h.dial(t, "bye")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	go h.rt.Close(ctx)
	_, _, err := c.Read(ctx)
	if got := websocket.CloseStatus(err); got != websocket.StatusGoingAway {
		t.Fatalf("close status %v (%v), want 1001", got, err)
	}
}

// A client sending faster than its object handles messages is not read
// further than a small window: the server never holds its backlog.
func TestSocketReadWindow(t *testing.T) {
	h := newWSHarness(t, nil)
	c := h.dial(t, "window")
	base := h.rt.Stats().Events
	go func() {
		for range 200 {
			if c.Write(context.Background(), websocket.MessageText, []byte("slow")) != nil {
				return
			}
		}
	}()
	waitFor(t, "the window filled", func() bool { return h.rt.Stats().Events-base >= 16 })
	settle()
	if n := h.rt.Stats().Events - base; n > 16 {
		t.Fatalf("%d messages taken from the socket while the object handled none; the window is 16", n)
	}
	close(h.slow)
	waitFor(t, "all 200 delivered", func() bool { return h.rt.Stats().Events-base >= 200 })
}

// A browser page of another origin cannot open a socket unless
// WebSocketOriginPatterns allows it; a refused upgrade is answered 403
// before the object runs, so it does not even activate it.
func TestWebSocketOrigins(t *testing.T) {
	h := newWSHarness(t, func(rt *durable.Runtime) { rt.WebSocketOriginPatterns = []string{"*.allowed.example"} })
	dial := func(room, origin string) (*http.Response, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, resp, err := websocket.Dial(ctx, h.url+"/"+room, &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {origin}}})
		if err == nil {
			h.mu.Lock()
			h.conns = append(h.conns, c)
			h.mu.Unlock()
		}
		return resp, err
	}
	for _, origin := range []string{"https://evil.example", "http://allowed.example.evil", "%zz"} {
		resp, err := dial("guarded", origin)
		if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("origin %q: %v", origin, err)
		}
	}
	if n := h.created.Load(); n != 0 {
		t.Fatalf("refused upgrades activated the object %d times", n)
	}
	for _, origin := range []string{"https://app.allowed.example", "http://" + strings.TrimPrefix(h.url, "ws://")} {
		if _, err := dial("guarded", origin); err != nil {
			t.Fatalf("origin %q refused: %v", origin, err)
		}
	}
}
