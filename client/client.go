package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// MaxResponseBody is the largest answer body the client reads (a fetch
// answer may carry up to 32 MiB of upstream body).
const MaxResponseBody = 64 << 20

// Client calls a `durable serve` server. Set its fields before the first
// call; it is then safe for concurrent use.
type Client struct {
	// Token, when set, is sent as "Authorization: Bearer <token>".
	Token string
	// HTTPClient sends the requests; http.DefaultClient if nil. Leave its
	// Timeout at 0 for lock acquires that wait: bound calls with their ctx.
	HTTPClient *http.Client
	// Retry says how failed requests are retried (see the package doc).
	Retry Retry

	base string // scheme://host[/prefix], without a trailing slash
}

// New returns a client of the server at baseURL, e.g.
// "http://127.0.0.1:8080" (a path prefix is kept, for a server behind a
// reverse proxy).
func New(baseURL string) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("durable: base URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("durable: base URL %q: want http:// or https:// and a host", baseURL)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("durable: base URL %q: no query, fragment or user info allowed", baseURL)
	}
	return &Client{base: strings.TrimRight(u.String(), "/")}, nil
}

// BaseURL returns the server's URL, as given to New (without a trailing
// slash).
func (c *Client) BaseURL() string { return c.base }

func (c *Client) httpClient() *http.Client {
	if c.HTTPClient != nil {
		return c.HTTPClient
	}
	return http.DefaultClient
}

// safety says when a request may be sent again after a failure that
// leaves its outcome unknown (see the package doc).
type safety int

const (
	// once: sent again only when the failure proves the request had no
	// effect (503 overloaded/unavailable, or a failed dial).
	once safety = iota
	// idempotent: also sent again after an ambiguous connection error.
	idempotent
)

// request is one API call.
type request struct {
	method string
	path   string // escaped, from "/"
	query  url.Values
	body   any    // JSON-encoded; nil sends no body
	raw    []byte // sent as is when body is nil (objects)
	header http.Header
	safety safety
	// passthrough: the status may be an upstream's or an application's
	// (fetch, objects), so only a 503 with api.md's overloaded or
	// unavailable code is the server's own.
	passthrough bool
}

// response is an answer, read whole.
type response struct {
	req    *request
	status int
	header http.Header
	body   []byte
	// uncertain: an earlier attempt failed after it may have taken effect.
	uncertain bool
	// stopped is why retrying a retryable answer stopped early (ctx).
	stopped error
}

// send sends r, retrying as the package doc says. It returns the last
// answer, whatever its status, or the error that ended the call when no
// answer came.
func (c *Client) send(ctx context.Context, r *request) (*response, error) {
	var body []byte
	switch {
	case r.body != nil:
		b, err := json.Marshal(r.body)
		if err != nil {
			return nil, fmt.Errorf("durable: %s %s: encoding the request: %w", r.method, r.path, err)
		}
		body = b
	case r.raw != nil:
		body = r.raw
	}
	return c.retry(ctx, r, func() (*response, error) { return c.attempt(ctx, r, body) })
}

// retry calls attempt, which makes r once, until it succeeds, fails in a
// way the package doc's rule does not retry for r, or the attempts, the
// time (ctx) or the patience (MaxDelay against Retry-After) run out.
func (c *Client) retry(ctx context.Context, r *request, attempt func() (*response, error)) (*response, error) {
	p := c.Retry.withDefaults()
	uncertain := false
	// stop returns the last retryable failure (an error, or an answer),
	// with why retrying stopped early when it did.
	var stop func(why error) (*response, error)
	for n := 1; ; n++ {
		if err := ctx.Err(); err != nil {
			// Nothing is sent on an ended context.
			return ended(err, uncertain, stop)
		}
		resp, err := attempt()
		retryAfter := resp.retryAfter()
		if err == nil {
			if resp.status == http.StatusServiceUnavailable && !resp.noEffect() {
				uncertain = true // a proxy's 503: the server may have acted
			}
			resp.uncertain = uncertain
			if !resp.retryable() {
				return resp, nil
			}
		} else {
			var f fatalError
			if errors.As(err, &f) {
				return nil, f.err
			}
			sent := !notSent(err)
			if !sent && ctx.Err() != nil {
				// The context ended before this attempt left: it
				// adds nothing to what the last one told.
				return ended(err, uncertain, stop)
			}
			uncertain = uncertain || sent
			if uncertain {
				err = fmt.Errorf("%w (%w)", err, ErrUnknownOutcome)
			}
			if ctx.Err() != nil || sent && r.safety != idempotent {
				return nil, err
			}
		}
		// The failure is retryable: err, or the answer resp.
		stop = func(why error) (*response, error) {
			if err != nil {
				if why != nil {
					return nil, fmt.Errorf("%w (stopped retrying: %w)", err, why)
				}
				return nil, err
			}
			resp.stopped = why
			return resp, nil
		}
		if n >= p.MaxAttempts {
			return stop(nil)
		}
		d, ok := p.delay(n, retryAfter)
		if !ok {
			return stop(nil) // the server asks for a longer wait than MaxDelay
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
			return stop(context.DeadlineExceeded)
		}
		if err := p.Sleep(ctx, d); err != nil {
			return stop(err)
		}
	}
}

// ended is retry's answer when its context ended (with err) before an
// attempt left: the last attempt's failure, if there was one, stopped by
// err; else err, marked ErrUnknownOutcome when an earlier attempt may have
// acted.
func ended(err error, uncertain bool, last func(why error) (*response, error)) (*response, error) {
	if last != nil {
		return last(err)
	}
	if uncertain {
		err = fmt.Errorf("%w (%w)", err, ErrUnknownOutcome)
	}
	return nil, err
}

// fatalError is an attempt's failure that is not the network's (a
// malformed request, an oversized answer): never retried.
type fatalError struct{ err error }

func (f fatalError) Error() string { return f.err.Error() }

// attempt sends r once and reads the whole answer.
func (c *Client) attempt(ctx context.Context, r *request, body []byte) (*response, error) {
	u := c.base + r.path
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, rd)
	if err != nil {
		return nil, fatalError{fmt.Errorf("durable: %s %s: %w", r.method, r.path, err)}
	}
	for k, v := range r.header {
		req.Header[k] = v
	}
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if !r.passthrough && req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	// Until the request's headers are written, nothing has left: a failure
	// before then (a dial that fails or times out) had no effect. Only a
	// transport that reports to the trace (GetConn: net/http's does) is
	// believed; with another, only a failed dial counts as not sent.
	var traced, wrote atomic.Bool
	req = req.WithContext(httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GetConn:      func(string) { traced.Store(true) },
		WroteHeaders: func() { wrote.Store(true) },
	}))
	hr, err := c.httpClient().Do(req)
	if err != nil {
		if traced.Load() && !wrote.Load() {
			return nil, notSentError{err}
		}
		return nil, err
	}
	defer hr.Body.Close()
	b, err := io.ReadAll(io.LimitReader(hr.Body, MaxResponseBody+1))
	if err != nil {
		return nil, fmt.Errorf("durable: %s %s: reading the answer: %w", r.method, r.path, err)
	}
	if len(b) > MaxResponseBody {
		return nil, fatalError{fmt.Errorf("durable: %s %s: answer body over %d bytes", r.method, r.path, MaxResponseBody)}
	}
	return &response{req: r, status: hr.StatusCode, header: hr.Header, body: b}, nil
}

// retryable reports whether the answer may be retried: a 503 with
// api.md's overloaded or unavailable code had no effect, so any request
// may be sent again; another 503 (a proxy's, say) only an idempotent one,
// and never a passthrough one (it is the upstream's answer).
func (r *response) retryable() bool {
	if r.status != http.StatusServiceUnavailable {
		return false
	}
	return r.noEffect() || !r.req.passthrough && r.req.safety == idempotent
}

// noEffect reports whether the answer says the request had no effect: a
// 503 with api.md's code overloaded or unavailable.
func (r *response) noEffect() bool {
	if r.status != http.StatusServiceUnavailable {
		return false
	}
	switch r.apiError().Code {
	case CodeOverloaded, CodeUnavailable:
		return true
	}
	return false
}

func (r *response) retryAfter() time.Duration {
	if r == nil {
		return 0
	}
	return parseRetryAfter(r.header.Get("Retry-After"))
}

// apiError decodes the answer as an api.md error.
func (r *response) apiError() *Error {
	e := &Error{Status: r.status, RetryAfter: r.retryAfter(), RequestID: r.header.Get("X-Request-Id")}
	var body struct {
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(r.body, &body) == nil && body.Error != nil && body.Error.Code != "" {
		e.Code, e.Message = body.Error.Code, body.Error.Message
		return e
	}
	e.Message = strings.TrimSpace(string(r.body))
	if len(e.Message) > 200 {
		e.Message = e.Message[:200] + "…"
	}
	if e.Message == "" {
		e.Message = http.StatusText(r.status)
	}
	return e
}

// err returns the answer as an error: its *Error, marked when an earlier
// attempt's outcome is unknown, with why retrying stopped early.
func (r *response) err() error {
	var err error = r.apiError()
	if r.uncertain {
		err = &uncertainError{err}
	}
	if r.stopped != nil {
		err = fmt.Errorf("%w (stopped retrying: %w)", err, r.stopped)
	}
	return err
}

// call sends r and decodes a want answer into out (if not nil); any other
// status is an error.
func (c *Client) call(ctx context.Context, r *request, want int, out any) error {
	resp, err := c.send(ctx, r)
	if err != nil {
		return err
	}
	if resp.status != want {
		return resp.err()
	}
	if out != nil {
		if err := json.Unmarshal(resp.body, out); err != nil {
			return fmt.Errorf("durable: %s %s: decoding the %d answer: %w", r.method, r.path, resp.status, err)
		}
	}
	return nil
}

// seg returns path parameter name's value v percent-encoded as one path
// segment (a "/" in it stays inside it). An empty value is refused here,
// since it would change the route.
func seg(name, v string) (string, error) {
	switch v {
	case "":
		return "", invalid("%s is empty", name)
	case ".", "..":
		// Valid names, but as they are they would be dot segments, which
		// the server refuses (and HTTP clients and proxies may remove).
		return strings.Repeat("%2E", len(v)), nil
	}
	return url.PathEscape(v), nil
}
