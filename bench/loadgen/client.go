package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// Client sends the requests of a scenario and tallies what comes back.
// Each worker has its own Client; they share one http.Client.
type Client struct {
	base  string // without trailing slash
	auth  string // "Bearer <token>" or ""
	hc    *http.Client
	stats *workerStats // nil during setup: nothing is tallied
}

// StatusError is returned by [Client.Do] when the response has another
// status than the one wanted.
type StatusError struct {
	Method, Path string
	Code         int
	Body         string // the start of the response body
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s %s: status %d: %s", e.Method, e.Path, e.Code, e.Body)
}

// newHTTPClient returns an http.Client with exactly conns keep-alive
// connections to the target, whose dialer refuses any non-loopback address
// (so even "localhost" cannot be pointed elsewhere).
func newHTTPClient(conns int, timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DialContext:         loopbackDialer().DialContext,
			MaxConnsPerHost:     conns,
			MaxIdleConnsPerHost: conns,
			MaxIdleConns:        conns,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
		// A benchmark measures what the server answers, not where it points.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// loopbackDialer returns a dialer that refuses any non-loopback address.
func loopbackDialer() *net.Dialer {
	return &net.Dialer{
		Timeout: 5 * time.Second,
		Control: func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil || !ap.Addr().IsLoopback() {
				return fmt.Errorf("%w: dial %s", ErrNotLoopback, address)
			}
			return nil
		},
	}
}

// Do sends one request with a JSON body (nil for none) and returns nil if
// the answer has status want, decoding it into out when out is non-nil. Any
// other status yields a *StatusError; a failure to get an answer yields the
// transport error. Every answer and transport error is tallied.
func (c *Client) Do(ctx context.Context, method, path string, body []byte, want int, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.auth != "" {
		req.Header.Set("Authorization", c.auth)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			c.stats.transportError(err)
		}
		return err
	}
	defer resp.Body.Close()
	// Read the whole body so the connection goes back to the pool.
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		if ctx.Err() == nil {
			c.stats.transportError(err)
		}
		return err
	}
	c.stats.status(resp.StatusCode)
	if resp.StatusCode != want {
		return &StatusError{Method: method, Path: path, Code: resp.StatusCode, Body: truncate(string(data), 200)}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}

func truncate(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
