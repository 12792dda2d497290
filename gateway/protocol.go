package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
)

// JSONProtocolErrors makes srv answer in the API's error shape where
// net/http would answer in plain text, and returns the listener to serve
// on: call it once srv's Handler (and any ConnState or ConnContext hook)
// is set, then srv.Serve(JSONProtocolErrors(srv, ln)).
//
// net/http rejects a request it cannot parse (headers over MaxHeaderBytes,
// a malformed request line or header, an unknown transfer coding, an HTTP
// version other than 1.x) itself, before any handler runs: it writes a
// canned response with a text/plain body and closes the connection. The
// API promises every error as {"error": {"code", "message"}} with
// Content-Type application/json, so the connections returned here
// recognise those canned responses, which net/http writes in one piece
// with exactly two headers, and write the same status as JSON instead,
// with code invalid_argument (the request is malformed) and net/http's
// reason as the message.
//
// Only writes made while no handler's response is under way are looked
// at: from the moment a handler starts until net/http has finished its
// response and set the connection idle (or for good, once a handler
// hijacked it), writes pass through untouched, whatever bytes they hold.
// A canned response is only ever written in between.
func JSONProtocolErrors(srv *http.Server, ln net.Listener) net.Listener {
	h := srv.Handler
	if h == nil {
		h = http.DefaultServeMux
	}
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, ok := r.Context().Value(protocolConnKey{}).(*protocolConn); ok {
			c.responding.Store(true)
		}
		h.ServeHTTP(w, r)
	})
	connContext := srv.ConnContext
	srv.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		if connContext != nil {
			ctx = connContext(ctx, c)
		}
		return context.WithValue(ctx, protocolConnKey{}, c)
	}
	connState := srv.ConnState
	srv.ConnState = func(c net.Conn, s http.ConnState) {
		if pc, ok := c.(*protocolConn); ok && s == http.StateIdle {
			pc.responding.Store(false) // the response is written; a hijacked conn never gets here
		}
		if connState != nil {
			connState(c, s)
		}
	}
	return protocolListener{ln}
}

type protocolConnKey struct{}

type protocolListener struct{ net.Listener }

func (l protocolListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &protocolConn{Conn: c}, nil
}

// protocolConn keeps the methods net/http looks for on a *net.TCPConn:
// CloseWrite (it half-closes after a 431) and ReadFrom (sendfile).
type protocolConn struct {
	net.Conn
	responding atomic.Bool // a handler's response is under way
}

func (c *protocolConn) Write(p []byte) (int, error) {
	if !c.responding.Load() {
		if j, ok := cannedAsJSON(p); ok {
			if _, err := c.Conn.Write(j); err != nil {
				return 0, err
			}
			return len(p), nil
		}
	}
	return c.Conn.Write(p)
}

func (c *protocolConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *protocolConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(c.Conn, r)
}

// cannedHeaders is what net/http's server writes between the status line
// and the body of the responses it makes up itself (net/http/server.go,
// conn.serve: errorHeaders).
const cannedHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

// cannedAsJSON returns the JSON version of p if p is a whole canned
// net/http error response: "HTTP/1.1 <code> <text>" + cannedHeaders +
// body, with a 4xx or 5xx code.
func cannedAsJSON(p []byte) ([]byte, bool) {
	const proto = "HTTP/1.1 "
	if len(p) < len(proto)+3 || string(p[:len(proto)]) != proto {
		return nil, false
	}
	line, rest, ok := bytes.Cut(p[len(proto):], []byte(cannedHeaders[:2]))
	if !ok || !bytes.HasPrefix(rest, []byte(cannedHeaders[2:])) {
		return nil, false
	}
	body := rest[len(cannedHeaders)-2:]
	code, err := strconv.Atoi(string(line[:3]))
	if err != nil || code < 400 || code > 599 || (len(line) > 3 && line[3] != ' ') {
		return nil, false
	}
	b, err := json.Marshal(errorBody{errorDetail{"invalid_argument", cannedMessage(string(line), string(body))}})
	if err != nil {
		return nil, false
	}
	b = append(b, '\n')
	status, _, _ := bytes.Cut(line, []byte(": "))
	var out bytes.Buffer
	out.WriteString(proto)
	out.Write(status)
	out.WriteString("\r\nContent-Type: application/json\r\nContent-Length: ")
	out.WriteString(strconv.Itoa(len(b)))
	out.WriteString("\r\nConnection: close\r\n\r\n")
	out.Write(b)
	return out.Bytes(), true
}

// cannedMessage turns a canned response's status line (past the
// protocol) and body into a message: net/http's detail if it gave one
// ("400 Bad Request: missing required Host header"), its body if that is
// not just the status ("Unsupported transfer encoding"), or the reason
// phrase in lower case ("request header fields too large").
func cannedMessage(line, body string) string {
	status, detail, _ := strings.Cut(line, ": ")
	switch {
	case detail != "":
		return detail
	case body != "" && body != status:
		return strings.ToLower(body[:1]) + body[1:]
	case status == "400 Bad Request":
		return "malformed HTTP request"
	}
	_, reason, _ := strings.Cut(status, " ")
	return strings.ToLower(reason)
}
