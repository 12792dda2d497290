package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
)

// Response is an HTTP answer passed through from an upstream (Fetch) or
// an application object (Object), whatever its status.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// APIError decodes the answer as an api.md error body, or returns nil if
// it is not one (or the status is under 400). The server's own errors
// (unknown upstream, 502 bad_gateway, 401, 503 …) have that body; an
// upstream or object may use it too, so read it knowing where the
// request went.
func (r *Response) APIError() *Error {
	if r.Status < 400 {
		return nil
	}
	var body struct {
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(r.Body, &body) != nil || body.Error == nil || body.Error.Code == "" {
		return nil
	}
	return &Error{Status: r.Status, Code: body.Error.Code, Message: body.Error.Message,
		RetryAfter: parseRetryAfter(r.Header.Get("Retry-After")), RequestID: r.Header.Get("X-Request-Id")}
}

// escapePath percent-encodes an unescaped, "/"-separated path.
func escapePath(p string) string {
	return (&url.URL{Path: strings.TrimPrefix(p, "/")}).EscapedPath()
}

// Fetch GETs path (unescaped, "/"-separated, below the upstream's base
// URL) and query from the configured upstream through the server, which
// shares one upstream request among identical concurrent ones:
// GET /v1/fetch/{upstream}/{path...}. The error is nil whenever an answer
// came: the server forwards the upstream's status as is, so every status
// (the server's own 404 for an unknown upstream and 502 for an unreachable
// one included) is returned in the Response; see Response.APIError.
//
// Retries: a GET, so also after ambiguous connection errors (the server
// sends the upstream a GET, which HTTP defines as safe). A 503 is retried
// only with the server's own overloaded or unavailable code: any other
// 503 is the upstream's answer and is returned.
func (c *Client) Fetch(ctx context.Context, upstream, path string, query url.Values) (*Response, error) {
	u, err := seg("upstream", upstream)
	if err != nil {
		return nil, err
	}
	r := &request{method: http.MethodGet, path: "/v1/fetch/" + u + "/" + escapePath(path), query: query,
		safety: idempotent, passthrough: true}
	return c.pass(ctx, r)
}

func (c *Client) pass(ctx context.Context, r *request) (*Response, error) {
	resp, err := c.send(ctx, r)
	if err != nil {
		return nil, err
	}
	return &Response{Status: resp.status, Header: resp.header, Body: resp.body}, nil
}

// ObjectRequest is a request to an application object's HTTP handler
// (a class registered through the Go API of a custom binary).
type ObjectRequest struct {
	Class string
	// Name addresses the object by name; when "", ID (its hex ID) does.
	Name string
	ID   string
	// Method is the HTTP method; GET if "".
	Method string
	// Path is the path the object sees (unescaped, "/"-separated).
	Path   string
	Query  url.Values
	Header http.Header
	Body   []byte
}

// Object sends req to an application object:
// ANY /v1/objects/{class}/{name}/{path...} (or .../id/{hex-id}/...). As
// with Fetch, every answer is returned as a Response whatever its status.
//
// Retries: after a 503 with the server's own overloaded or unavailable
// code, or a failed dial, always; after an ambiguous connection error
// only if the request is idempotent by the rule of Go's http.Transport:
// a GET, HEAD, OPTIONS or TRACE, or one carrying an Idempotency-Key or
// X-Idempotency-Key header (the object must then honour it).
func (c *Client) Object(ctx context.Context, req ObjectRequest) (*Response, error) {
	class, err := seg("class", req.Class)
	if err != nil {
		return nil, err
	}
	var addr string
	if req.Name != "" {
		addr, _ = seg("name", req.Name)
	} else if addr, err = seg("id", req.ID); err == nil {
		addr = "id/" + addr
	} else {
		return nil, invalid("Name or ID is required")
	}
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	safe := once
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		safe = idempotent
	}
	if req.Header.Get("Idempotency-Key") != "" || req.Header.Get("X-Idempotency-Key") != "" {
		safe = idempotent
	}
	r := &request{method: method, path: "/v1/objects/" + class + "/" + addr + "/" + escapePath(req.Path),
		query: req.Query, header: req.Header, raw: req.Body, safety: safe, passthrough: true}
	return c.pass(ctx, r)
}
