package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/coder/websocket"
	"github.com/durableobjects/durable/gateway"
	"github.com/durableobjects/durable/patterns/collab"
)

// lockedBuffer is a bytes.Buffer safe for the log writer's flushing
// goroutine and the test to use at once.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// server is a `durable serve` running in this process.
type server struct {
	Addr   string
	Stderr *lockedBuffer
	// ReadyLog is what Stderr held when Ready was called.
	ReadyLog string
	cancel   context.CancelFunc
	done     chan error
}

// startServe runs `durable serve` on 127.0.0.1:0 with a fresh data
// directory and extra flags, waits for Ready, and stops the server when
// the test ends.
func startServe(t *testing.T, extra ...string) *server {
	t.Helper()
	s, err := tryServe(t, extra...)
	if err != nil {
		t.Fatalf("serve %v: %v\nstderr:\n%s", extra, err, s.Stderr)
	}
	return s
}

// tryServe is startServe that returns runServe's error if it ends before
// Ready is called.
func tryServe(t *testing.T, extra ...string) (*server, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{Stderr: &lockedBuffer{}, cancel: cancel, done: make(chan error, 1)}
	ready := make(chan string, 1)
	m := &Main{Stdout: io.Discard, Stderr: s.Stderr, Ready: func(addr string) {
		s.ReadyLog = s.Stderr.String()
		ready <- addr
	}}
	args := append([]string{"--addr", "127.0.0.1:0", "--data", t.TempDir()}, extra...)
	go func() { s.done <- runServe(ctx, m, args) }()
	select {
	case s.Addr = <-ready:
	case err := <-s.done:
		cancel()
		if err == nil {
			err = errors.New("runServe returned nil before Ready")
		}
		return s, err
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatalf("serve %v: not ready after 30 s\nstderr:\n%s", extra, s.Stderr)
	}
	t.Cleanup(func() { s.stop(t) })
	return s, nil
}

// stop cancels the server's context (what SIGTERM does) and returns
// runServe's result; later calls return nil.
func (s *server) stop(t *testing.T) error {
	t.Helper()
	if s.done == nil {
		return nil
	}
	s.cancel()
	select {
	case err := <-s.done:
		s.done = nil
		return err
	case <-time.After(60 * time.Second):
		t.Fatalf("runServe did not return 60 s after its context was canceled\nstderr:\n%s", s.Stderr)
		return nil
	}
}

// readMsg reads the next message of c and decodes it as JSON.
func readMsg(c *websocket.Conn) (map[string]any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, b, err := c.Read(ctx)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return m, nil
}

func writeMsg(c *websocket.Conn, b []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return c.Write(ctx, websocket.MessageText, b)
}

// TestServeWebSocketMessageLimit checks that serve limits WebSocket
// messages to what a document PUT may carry: the largest edit (a whole
// document of characters JSON escapes as \u00XX) and a message of exactly
// DocsMaxBody bytes are read; one byte more closes the socket with 1009.
func TestServeWebSocketMessageLimit(t *testing.T) {
	s := startServe(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+s.Addr+"/v1/docs/limit", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	c.SetReadLimit(64 << 20)
	if m, err := readMsg(c); err != nil || m["type"] != "init" {
		t.Fatalf("first message %v (%v), want init", m, err)
	}

	// A whole document, every byte escaped to six: about 6 MiB of JSON.
	edit, err := json.Marshal(map[string]string{"type": "edit", "content": strings.Repeat("\x01", collab.MaxContent)})
	if err != nil {
		t.Fatal(err)
	}
	if len(edit) <= 6*collab.MaxContent || len(edit) > gateway.DocsMaxBody {
		t.Fatalf("the largest edit is %d bytes; want over %d and at most DocsMaxBody (%d)", len(edit), 6*collab.MaxContent, gateway.DocsMaxBody)
	}
	if err := writeMsg(c, edit); err != nil {
		t.Fatalf("write the largest edit: %v", err)
	}
	if m, err := readMsg(c); err != nil || m["type"] != "ack" || m["version"] != 1.0 {
		t.Fatalf("after the largest edit: %v (%v), want an ack of version 1", m, err)
	}

	// Exactly the limit: read, and answered with an error (no type).
	atLimit := []byte(strings.Repeat(" ", gateway.DocsMaxBody-2) + "{}")
	if err := writeMsg(c, atLimit); err != nil {
		t.Fatalf("write %d bytes: %v", len(atLimit), err)
	}
	if m, err := readMsg(c); err != nil || m["type"] != "error" {
		t.Fatalf("a message of exactly DocsMaxBody bytes: %v (%v), want an error message", m, err)
	}

	// One byte over: the socket is closed with 1009. The write may fail
	// when the server closes the connection before reading it all.
	overLimit := []byte(strings.Repeat(" ", gateway.DocsMaxBody-1) + "{}")
	werr := writeMsg(c, overLimit)
	_, rerr := readMsg(c)
	if got := websocket.CloseStatus(rerr); got != websocket.StatusMessageTooBig {
		t.Fatalf("a message of DocsMaxBody+1 bytes: read %v (status %v; write: %v), want close status 1009", rerr, got, werr)
	}
}

// TestServePprofLoopbackOnly checks that --pprof refuses addresses other
// than loopback ones, before the data directory is touched, and that the
// server then does not start.
func TestServePprofLoopbackOnly(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", "example.com:1", "192.0.2.1:6060", ":6060", "127.0.0.1:99999", "localhost"} {
		t.Run(addr, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "data")
			s, err := tryServe(t, "--pprof", addr, "--data", data)
			if err == nil {
				t.Fatalf("--pprof %s: the server started on %s", addr, s.Addr)
			}
			if !strings.Contains(err.Error(), "--pprof") {
				t.Fatalf("--pprof %s: error %q does not mention --pprof", addr, err)
			}
			if strings.Contains(s.Stderr.String(), "pprof listening") {
				t.Fatalf("--pprof %s: the log says pprof listens:\n%s", addr, s.Stderr)
			}
			if _, err := os.Stat(data); !os.IsNotExist(err) {
				t.Fatalf("--pprof %s: the data directory was created (stat: %v): the flag was checked after the runtime opened", addr, err)
			}
		})
	}
}

// TestServePprofLocalhost checks that --pprof localhost:PORT is accepted
// and listens on 127.0.0.1.
func TestServePprofLocalhost(t *testing.T) {
	s := startServe(t, "--pprof", "localhost:0")
	m := pprofLine.FindStringSubmatch(s.ReadyLog)
	if m == nil {
		t.Fatalf("no pprof listening line before Ready:\n%s", s.ReadyLog)
	}
	if !strings.HasPrefix(m[1], "127.0.0.1:") {
		t.Fatalf("--pprof localhost:0 listens on %s, want 127.0.0.1", m[1])
	}
}

var pprofLine = regexp.MustCompile(`msg="pprof listening" addr=(\S+)`)

// TestServePprof checks that --pprof 127.0.0.1:0 serves the profile index
// on the address it logs.
func TestServePprof(t *testing.T) {
	s := startServe(t, "--pprof", "127.0.0.1:0")
	m := pprofLine.FindStringSubmatch(s.ReadyLog)
	if m == nil {
		t.Fatalf("no pprof listening line before Ready:\n%s", s.ReadyLog)
	}
	addr := m[1]
	if addr == s.Addr {
		t.Fatalf("pprof listens on the server's own address %s", addr)
	}
	resp, err := http.Get("http://" + addr + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "goroutine") {
		t.Fatalf("GET /debug/pprof/: %d %.200s", resp.StatusCode, body)
	}
	// The profiles are not on the API's address.
	resp, err = http.Get("http://" + s.Addr + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == 200 {
		t.Fatalf("GET /debug/pprof/ on the API address: 200")
	}
	if err := s.stop(t); err != nil {
		t.Fatalf("stop: %v", err)
	}
	// Stopping the server stops the pprof listener.
	if resp, err := http.Get("http://" + addr + "/debug/pprof/"); err == nil {
		resp.Body.Close()
		t.Fatalf("pprof still answers after the server stopped: %d", resp.StatusCode)
	}
}

// TestServeListeningLineBeforeReady checks that whoever waits for the
// server finds the "listening" line, with the address, already written.
func TestServeListeningLineBeforeReady(t *testing.T) {
	s := startServe(t)
	want := `msg=listening addr=` + s.Addr
	if !strings.Contains(s.ReadyLog, want) {
		t.Fatalf("stderr when Ready was called has no %q:\n%s", want, s.ReadyLog)
	}
}

// TestServeGracefulStop checks that canceling the context (what SIGTERM
// does) stops a server that has served a write with a nil error, and that
// the last log lines are written out.
func TestServeGracefulStop(t *testing.T) {
	s := startServe(t)
	req, _ := http.NewRequest("PUT", "http://"+s.Addr+"/v1/docs/stop", strings.NewReader(`{"content":"kept"}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("PUT: %d", resp.StatusCode)
	}
	if err := s.stop(t); err != nil {
		t.Fatalf("runServe after cancel: %v, want nil\nstderr:\n%s", err, s.Stderr)
	}
	log := s.Stderr.String()
	for _, want := range []string{"msg=listening", `msg="shutting down`, "msg=stopped"} {
		if !strings.Contains(log, want) {
			t.Errorf("stderr has no %q:\n%s", want, log)
		}
	}
	if _, err := http.Get("http://" + s.Addr + "/v1/docs/stop"); err == nil {
		t.Errorf("the server still answers after runServe returned")
	}
}

// TestLogWriter checks the buffered log: Info lines wait for Flush, the
// flush interval, or Close; a record at Warn or above writes out at once
// (with what was buffered before it); after Close writes go straight
// through. It runs in a synctest bubble, so the flush interval passes only
// when the test sleeps.
func TestLogWriter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		out := &lockedBuffer{}
		lw := newLogWriter(out)
		log := slog.New(flushingHandler{newTextHandler(lw), lw})
		check := func(what string, want, notWant []string) {
			t.Helper()
			got := out.String()
			for _, w := range want {
				if !strings.Contains(got, w) {
					t.Errorf("%s: output has no %q:\n%s", what, w, got)
				}
			}
			for _, w := range notWant {
				if strings.Contains(got, w) {
					t.Errorf("%s: output already has %q:\n%s", what, w, got)
				}
			}
		}

		log.Info("one")
		check("after an Info record", nil, []string{"msg=one"})
		lw.Flush()
		check("after Flush", []string{"msg=one"}, nil)

		log.Info("two")
		log.Debug("hidden")
		check("after a second Info record", nil, []string{"msg=two"})
		log.Warn("three")
		check("after a Warn record", []string{"msg=two", "msg=three"}, []string{"hidden"})

		// Loggers derived with With and WithGroup flush on Warn too.
		log.Info("four")
		log.With("k", "v").Error("five")
		check("after an Error record from With", []string{"msg=four", "msg=five k=v"}, nil)
		log.Info("six")
		log.WithGroup("g").Warn("seven", "k", "v")
		check("after a Warn record from WithGroup", []string{"msg=six", "msg=seven g.k=v"}, nil)

		// The flush interval.
		log.Info("eight")
		check("before the flush interval", nil, []string{"msg=eight"})
		time.Sleep(logFlushInterval)
		synctest.Wait()
		check("after the flush interval", []string{"msg=eight"}, nil)

		// A full buffer is written out before it would overflow; a write
		// bigger than the buffer goes through at once.
		lw.Write([]byte("nine\n"))
		lw.Write(bytes.Repeat([]byte("x"), logBufferSize-len("nine\n")))
		check("with the buffer full", nil, []string{"nine"})
		lw.Write([]byte("ten\n"))
		check("after the buffer overflowed", []string{"nine\n"}, []string{"ten"})
		lw.Flush()
		huge := strings.Repeat("y", logBufferSize+1)
		lw.Write([]byte(huge))
		check("after a write bigger than the buffer", []string{"ten\n", huge}, nil)

		log.Info("eleven")
		check("before Close", nil, []string{"msg=eleven"})
		lw.Close()
		check("after Close", []string{"msg=eleven"}, nil)
		log.Info("twelve")
		check("an Info record after Close", []string{"msg=twelve"}, nil)
		lw.Close() // a second Close does nothing (it used to panic)

		// Every line came out once, in order.
		var got []string
		for _, line := range strings.Split(out.String(), "\n") {
			if _, msg, ok := strings.Cut(line, "msg="); ok {
				got = append(got, strings.Fields(msg)[0])
			}
		}
		want := []string{"one", "two", "three", "four", "five", "six", "seven", "eight", "eleven", "twelve"}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("messages %v, want %v", got, want)
		}
	})
}
