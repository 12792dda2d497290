package torture

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// The limits of the real server (cmd/durable/serve.go): header size, body
// size, WebSocket message size, slow clients, file descriptors.

func TestHeaderLimit(t *testing.T) {
	s := startServer(t, t.TempDir())
	c := newClient(2, 30*time.Second)
	// Under MaxHeaderBytes (64 KiB): served.
	req, _ := http.NewRequest("GET", s.URL+"/healthz", nil)
	req.Header.Set("X-Big", strings.Repeat("a", 60<<10))
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("60 KiB of headers: %d, want 200", resp.StatusCode)
	}
	// Over it: 431 from net/http, before any handler runs, in the API's
	// error shape.
	req, _ = http.NewRequest("GET", s.URL+"/healthz", nil)
	req.Header.Set("X-Big", strings.Repeat("a", 100<<10))
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	checkErrorBody(t, &reply{Status: resp.StatusCode, Header: resp.Header, Body: b}, http.StatusRequestHeaderFieldsTooLarge, "invalid_argument")
	mustCall(t, c, "GET", s.URL+"/healthz", nil)
	s.stop()
}

func TestBodyLimit(t *testing.T) {
	s := startServer(t, t.TempDir())
	c := newClient(2, 30*time.Second)
	big := `{"limit": 10, "window_ms": 1000, "algorithm": "` + strings.Repeat("x", 2<<20) + `"}`
	for _, chunked := range []bool{false, true} {
		var body io.Reader = strings.NewReader(big)
		if chunked {
			body = io.MultiReader(body) // no length: sent chunked
		}
		req, _ := http.NewRequest("POST", s.URL+"/v1/ratelimit/k/check", body)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		checkErrorBody(t, &reply{Status: resp.StatusCode, Header: resp.Header, Body: b}, http.StatusRequestEntityTooLarge, "payload_too_large")
	}
	// --max-body lowers it.
	s.stop()
	s = startServer(t, t.TempDir(), "--max-body", "100")
	r := mustCall(t, c, "POST", s.URL+"/v1/ratelimit/k/check", map[string]any{"limit": 10, "window_ms": 1000, "algorithm": strings.Repeat("x", 100)})
	checkErrorBody(t, r, http.StatusRequestEntityTooLarge, "payload_too_large")
	if r := mustCall(t, c, "POST", s.URL+"/v1/ratelimit/k/check", map[string]any{"limit": 10, "window_ms": 1000}); r.Status != http.StatusOK {
		t.Fatalf("small body with --max-body 100: %d %s", r.Status, r.Body)
	}
	s.stop()
}

// TestWebSocketMessageLimit: a document socket sending a message over the
// runtime's limit (32 MiB, DefaultMaxWebSocketMessage) is closed with 1009;
// the document and other sockets are unaffected.
func TestWebSocketMessageLimit(t *testing.T) {
	t.Parallel()
	s := startServer(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dial := func() *websocket.Conn {
		ws, _, err := websocket.Dial(ctx, "ws://"+s.Addr+"/v1/docs/limits", nil)
		if err != nil {
			t.Fatal(err)
		}
		ws.SetReadLimit(8 << 20)
		if _, m, err := ws.Read(ctx); err != nil || !bytes.Contains(m, []byte(`"init"`)) {
			t.Fatalf("first message %q, %v", m, err)
		}
		return ws
	}
	bystander, ws := dial(), dial()
	defer bystander.CloseNow()
	msg := append([]byte(`{"type":"edit","content":"`), bytes.Repeat([]byte{'a'}, 33<<20)...)
	msg = append(msg, `"}`...)
	ws.Write(ctx, websocket.MessageText, msg) // may fail once the server closes
	_, _, err := ws.Read(ctx)
	if got := websocket.CloseStatus(err); got != websocket.StatusMessageTooBig {
		t.Fatalf("after a 33 MiB message: %v (close status %d), want close 1009", err, got)
	}
	if err := bystander.Write(ctx, websocket.MessageText, []byte(`{"type":"edit","content":"still here"}`)); err != nil {
		t.Fatal(err)
	}
	if _, m, err := bystander.Read(ctx); err != nil || !bytes.Contains(m, []byte(`"ack"`)) {
		t.Fatalf("other socket after the oversized message: %q, %v", m, err)
	}
	bystander.Close(websocket.StatusNormalClosure, "")
	s.stop()
}

// slowClient connects to the server and sends request, one byte per
// interval, until the server closes the connection; it returns how long
// that took and what the server answered.
func slowClient(t *testing.T, addr, request string, interval time.Duration) (time.Duration, string) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	closed := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(conn) // until the server closes it
		closed <- b
	}()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for i := 0; ; i = (i + 1) % len(request) {
		select {
		case b := <-closed:
			return time.Since(start), string(b)
		case <-tick.C:
			conn.Write([]byte{request[i]}) // fails once the server is gone
		case <-time.After(3 * time.Minute):
			t.Fatal("the server kept a slow client for 3 minutes")
		}
	}
}

// TestSlowHeadersCutOff: a client sending its headers one byte per second
// (slowloris) is disconnected once ReadHeaderTimeout (10 s in serve.go,
// not configurable) has passed, and the server serves others meanwhile.
func TestSlowHeadersCutOff(t *testing.T) {
	t.Parallel()
	s := startServer(t, t.TempDir())
	c := newClient(2, 30*time.Second)
	var wg sync.WaitGroup
	var took time.Duration
	var answer string
	wg.Go(func() {
		took, answer = slowClient(t, s.Addr, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "+strings.Repeat("a", 1000), time.Second)
	})
	for range 3 {
		if r := mustCall(t, c, "GET", s.URL+"/healthz", nil); r.Status != http.StatusOK {
			t.Fatalf("healthz while a slow client is connected: %d", r.Status)
		}
	}
	wg.Wait()
	t.Logf("slow headers: disconnected after %v; answer %q", took.Round(time.Millisecond), firstLine(answer))
	if took < 9*time.Second || took > 20*time.Second {
		t.Fatalf("slow client disconnected after %v, want about 10 s (ReadHeaderTimeout)", took)
	}
	s.stop()
}

// TestSlowBodyCutOff: a client sending its body one byte per second is
// disconnected once ReadTimeout (30 s in serve.go, not configurable) has
// passed since the request began.
func TestSlowBodyCutOff(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 30 s")
	}
	t.Parallel()
	s := startServer(t, t.TempDir())
	req := "POST /v1/ratelimit/k/check HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n" +
		`{"limit": 10, "window_ms": 1000, "algorithm": "` + strings.Repeat("x", 99_000)
	// Headers at once, then the body byte by byte.
	conn, err := net.Dial("tcp", s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	head := strings.Index(req, "\r\n\r\n") + 4
	start := time.Now()
	if _, err := conn.Write([]byte(req[:head])); err != nil {
		t.Fatal(err)
	}
	closed := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(conn)
		closed <- string(b)
	}()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var answer string
	for i := head; answer == ""; i++ {
		select {
		case answer = <-closed:
			if answer == "" {
				answer = "(nothing)"
			}
		case <-tick.C:
			conn.Write([]byte{req[i]})
		case <-time.After(3 * time.Minute):
			t.Fatal("the server kept a slow body for 3 minutes")
		}
	}
	took := time.Since(start)
	t.Logf("slow body: disconnected after %v; answer %q", took.Round(time.Millisecond), answer)
	if took < 25*time.Second || took > 45*time.Second {
		t.Fatalf("slow body cut off after %v, want about 30 s (ReadTimeout)", took)
	}
	s.stop()
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\r\n")
	return line
}

// TestFileDescriptorExhaustion runs the server with a low open-file limit
// and opens more connections than it allows: the server must not crash,
// and must serve again once the connections are gone. (serve has no cap
// on connections or WebSockets of its own beyond 32,768 sockets per
// document; the process's file limit is the cap.)
func TestFileDescriptorExhaustion(t *testing.T) {
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		t.Skip("SKIPPED, NOT TESTED: prlimit (util-linux) is not installed")
	}
	s := startServerWith(t, t.TempDir(), []string{prlimit, "--nofile=256:256", "--"})
	c := newClient(2, 30*time.Second)
	mustCall(t, c, "GET", s.URL+"/healthz", nil)
	var conns []net.Conn
	for range 400 {
		conn, err := net.DialTimeout("tcp", s.Addr, 5*time.Second)
		if err != nil {
			break
		}
		conns = append(conns, conn)
		// A request on each, so the server holds the connection open.
		fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	}
	answered := 0
	readBy := time.Now().Add(2 * time.Second)
	for _, conn := range conns {
		conn.SetReadDeadline(readBy)
		if line, err := bufio.NewReader(conn).ReadString('\n'); err == nil && strings.Contains(line, "200") {
			answered++
		}
	}
	t.Logf("%d connections opened, %d answered (the server may hold at most 256 files)", len(conns), answered)
	for _, conn := range conns {
		conn.Close()
	}
	// Accept errors (EMFILE) back off; the server recovers.
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		r, err := call(ctx, c, "POST", s.URL+"/v1/ratelimit/fd/check", map[string]any{"limit": 10, "window_ms": 1000})
		cancel()
		if err == nil && r.Status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server does not serve 30 s after the connections closed: %v %v", r, err)
		}
	}
	select {
	case <-s.done:
		t.Fatalf("server exited: %v", s.err)
	default:
	}
	if strings.Contains(s.logs.String(), "panic") {
		t.Fatalf("server panicked:\n%s", s.logs.tail(20))
	}
	s.stop()
}
