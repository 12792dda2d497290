package gateway

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// serveRaw serves h on loopback through JSONProtocolErrors, with 1 KiB of
// headers allowed, and returns its address.
func serveRaw(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, MaxHeaderBytes: 1 << 10, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(JSONProtocolErrors(srv, ln))
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// rawRoundTrip writes req as it is on a new connection and reads one response.
func rawRoundTrip(t *testing.T, addr, req string) (*http.Response, []byte) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%q: %v", req, err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%q: body: %v", req, err)
	}
	return resp, body
}

func TestRequestsNetHTTPRejectsGetJSONErrors(t *testing.T) {
	var served int
	addr := serveRaw(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { served++ }))
	for _, c := range []struct {
		name, req string
		status    int
		message   string
	}{
		{"headers over MaxHeaderBytes", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 8<<10) + "\r\n\r\n",
			431, "request header fields too large"},
		{"malformed request line", "NONSENSE\r\n\r\n", 400, "malformed HTTP request"},
		{"no Host header", "GET / HTTP/1.1\r\n\r\n", 400, "missing required Host header"},
		{"malformed header line", "GET / HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n", 400, "malformed HTTP request"},
		{"unknown transfer coding", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501, "unsupported transfer encoding"},
		{"HTTP/3.0", "GET / HTTP/3.0\r\nHost: x\r\n\r\n", 505, "unsupported protocol version"},
	} {
		resp, body := rawRoundTrip(t, addr, c.req)
		if resp.StatusCode != c.status {
			t.Errorf("%s: status %d %s, want %d", c.name, resp.StatusCode, body, c.status)
			continue
		}
		if want := fmt.Sprint(c.status, " ", http.StatusText(c.status)); resp.Status != want {
			t.Errorf("%s: status line %q, want %q", c.name, resp.Status, want)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: Content-Type %q, want application/json", c.name, ct)
		}
		var e errorBody
		dec := json.NewDecoder(strings.NewReader(string(body)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			t.Errorf("%s: body %q is not the API's error: %v", c.name, body, err)
			continue
		}
		if e.Error.Code != "invalid_argument" || e.Error.Message != c.message {
			t.Errorf("%s: error %+v, want invalid_argument %q", c.name, e.Error, c.message)
		}
		if resp.ContentLength != int64(len(body)) || !resp.Close {
			t.Errorf("%s: Content-Length %d for %d bytes, close %v", c.name, resp.ContentLength, len(body), resp.Close)
		}
	}
	if served != 0 {
		t.Errorf("the handler ran %d times; net/http should have rejected every request", served)
	}
}

// A handler's own plain-text response, as close to a canned one as a
// handler can make it, passes through unchanged.
func TestHandlerResponsesPassThrough(t *testing.T) {
	addr := serveRaw(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Date"] = nil
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Connection", "close")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, "400 Bad Request")
	}))
	resp, body := rawRoundTrip(t, addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp.StatusCode != 400 || resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" || string(body) != "400 Bad Request" {
		t.Fatalf("handler's response changed: %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
}

// A handler's body holding net/http's canned bytes where a write to the
// connection begins (net/http writes a large body straight through) is
// sent as it is, and the connection stays usable.
func TestHandlerBodiesAreNeverRewritten(t *testing.T) {
	const canned = "HTTP/1.1 404 Not Found" + cannedHeaders
	var off atomic.Int64
	body := func(n int64) []byte { return []byte(strings.Repeat("x", int(n)) + canned + strings.Repeat("y", 8192)) }
	addr := serveRaw(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := []byte("small")
		if r.URL.Path == "/big" {
			b = body(off.Load())
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.WriteHeader(http.StatusOK)
		w.Write(b) // one Write, as Stub.Handle does
	}))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(c)
	get := func(path string) []byte {
		t.Helper()
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s at offset %d: %v", path, off.Load(), err)
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// Every offset near net/http's 4 KiB buffer, on one keep-alive connection.
	for n := int64(3800); n < 4200; n++ {
		off.Store(n)
		if b := get("/big"); string(b) != string(body(n)) {
			t.Fatalf("offset %d: the body changed (%d bytes, want %d)", n, len(b), len(body(n)))
		}
		if b := get("/small"); string(b) != "small" {
			t.Fatalf("after offset %d: next response %q", n, b)
		}
	}
}

func TestCannedAsJSONLeavesOtherWritesAlone(t *testing.T) {
	for _, p := range []string{
		"",
		"HTTP/1.1 ",
		"HTTP/1.1 200 OK" + cannedHeaders + "200 OK", // not an error status
		"HTTP/1.1 4x1 Oops" + cannedHeaders + "body", // not a number
		"HTTP/1.1 4000 Oops" + cannedHeaders + "body",
		"HTTP/1.1 400 Bad Request\r\nContent-Length: 3" + cannedHeaders + "abc",
		"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n",
		"{\"chunk\": \"of a body\"}",
	} {
		if j, ok := cannedAsJSON([]byte(p)); ok {
			t.Errorf("%q rewritten as %q", p, j)
		}
	}
}
