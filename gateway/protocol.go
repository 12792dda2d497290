package gateway

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"strconv"
	"strings"
)

// JSONProtocolErrors returns a listener whose connections answer in the
// API's error shape where net/http would answer in plain text.
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
// Every other write passes through unchanged: a response written through
// a handler always carries headers of its own (Date, a length or chunked
// encoding) between the status line and Content-Type, so it never matches.
func JSONProtocolErrors(ln net.Listener) net.Listener { return protocolListener{ln} }

type protocolListener struct{ net.Listener }

func (l protocolListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &protocolConn{c}, nil
}

// protocolConn keeps the methods net/http looks for on a *net.TCPConn:
// CloseWrite (it half-closes after a 431) and ReadFrom (sendfile).
type protocolConn struct{ net.Conn }

func (c *protocolConn) Write(p []byte) (int, error) {
	if j, ok := cannedAsJSON(p); ok {
		if _, err := c.Conn.Write(j); err != nil {
			return 0, err
		}
		return len(p), nil
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
