package dedup

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/durableobjects/durable"
)

// Class is the class name the coalescing objects are registered under.
const Class = "dedup"

// Defaults.
const (
	// DefaultMaxBody bounds an upstream response body (api.md: 32 MiB).
	DefaultMaxBody = 32 << 20
	// DefaultTimeout bounds an upstream request.
	DefaultTimeout = 30 * time.Second
	// MaxKeyName is the longest key used as an object name as it is;
	// longer keys name their object by their SHA-256.
	MaxKeyName = 256
)

// Internal headers between the Client and its objects. The secret marks a
// request as the Client's own, so nothing else that can reach an object's
// ServeHTTP can make it fetch; the error header carries an upstream failure
// back (it is removed from every upstream response).
const (
	secretHeader = "Durable-Dedup-Secret"
	errorHeader  = "Durable-Dedup-Error"
)

// Options configure the coalescing fetch.
type Options struct {
	// Upstreams are the reachable base URLs (http or https), by name.
	Upstreams map[string]string
	// Client makes the upstream requests; a client with DefaultTimeout if
	// nil. Redirects are never followed: a 3xx is forwarded as it is.
	Client *http.Client
	// MaxBody bounds an upstream response body; DefaultMaxBody if 0.
	MaxBody int64
	// Timeout bounds one upstream request, from connecting to the last
	// byte of the body; DefaultTimeout if 0.
	Timeout time.Duration
}

// Client coalesces identical concurrent GETs. It is safe for concurrent use.
type Client struct {
	ns        *durable.Namespace
	upstreams map[string]*url.URL
	http      *http.Client
	maxBody   int64
	timeout   time.Duration
	secret    string
}

// Register registers the dedup class on rt (before rt.Open) and returns
// its client.
func Register(rt *durable.Runtime, opts Options) (*Client, error) {
	c := &Client{upstreams: map[string]*url.URL{}, maxBody: opts.MaxBody, timeout: opts.Timeout}
	if c.maxBody == 0 {
		c.maxBody = DefaultMaxBody
	}
	if c.timeout == 0 {
		c.timeout = DefaultTimeout
	}
	if c.maxBody < 0 || c.timeout < 0 {
		return nil, fmt.Errorf("dedup: MaxBody = %d, Timeout = %v: want >= 0", opts.MaxBody, opts.Timeout)
	}
	for name, raw := range opts.Upstreams {
		u, err := parseBase(raw)
		if err != nil {
			return nil, fmt.Errorf("dedup: upstream %q: %w", name, err)
		}
		if name == "" {
			return nil, fmt.Errorf("dedup: upstream with an empty name")
		}
		c.upstreams[name] = u
	}
	hc := &http.Client{}
	if opts.Client != nil {
		copied := *opts.Client
		hc = &copied
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.http = hc
	var secret [16]byte
	rand.Read(secret[:])
	c.secret = base64.RawURLEncoding.EncodeToString(secret[:])
	ns, err := rt.Register(Class, func(st *durable.State) any {
		return &fetcher{st: st, c: c, flights: map[string]*flight{}}
	})
	if err != nil {
		return nil, err
	}
	c.ns = ns
	return c, nil
}

func parseBase(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("base URL %q: scheme must be http or https", raw)
	case u.Host == "":
		return nil, fmt.Errorf("base URL %q has no host", raw)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, fmt.Errorf("base URL %q must have no query or fragment", raw)
	}
	return u, nil
}

// Known reports whether upstream is configured.
func (c *Client) Known(upstream string) bool {
	_, ok := c.upstreams[upstream]
	return ok
}

// CheckPath checks a request path (escaped, relative to the base URL): it
// must be a valid escaping, and no segment of it, once unescaped, may be
// "." or ".." (with '/' or '\' as separators), so it cannot climb out of
// the base URL's path however the upstream normalizes it.
func CheckPath(path string) error {
	dec, err := url.PathUnescape(path)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidPath, err)
	}
	for _, seg := range strings.FieldsFunc(dec, func(r rune) bool { return r == '/' || r == '\\' }) {
		if seg == "." || seg == ".." {
			return fmt.Errorf("%w: path has a %q segment", ErrInvalidPath, seg)
		}
	}
	return nil
}

// Target returns the upstream URL of a request: the base URL's path (with
// any trailing '/' dropped), '/', then path, which is escaped and relative,
// kept as it was escaped; rawQuery is forwarded as it is.
func (c *Client) Target(upstream, path, rawQuery string) (*url.URL, error) {
	base, ok := c.upstreams[upstream]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownUpstream, upstream)
	}
	if err := CheckPath(path); err != nil {
		return nil, err
	}
	dec, _ := url.PathUnescape(path)
	u := *base
	u.User = base.User
	u.Path = strings.TrimSuffix(base.Path, "/") + "/" + dec
	u.RawPath = strings.TrimSuffix(base.EscapedPath(), "/") + "/" + path
	u.RawQuery = rawQuery
	u.ForceQuery = false
	return &u, nil
}

// ObjectName is the name of the object that coalesces requests for (upstream,
// path, rawQuery): the key itself, or its SHA-256 when longer than MaxKeyName.
func ObjectName(upstream, path, rawQuery string) string {
	key := strconv.Quote(upstream) + "/" + path + "?" + rawQuery
	if len(key) <= MaxKeyName {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Fetch GETs path (escaped, relative to the upstream's base URL) with
// rawQuery from upstream, sharing one upstream request with the identical
// requests in flight at the same time. The response is complete and the
// caller's own: status, headers without the hop-by-hop ones (and without
// Content-Length; the body's length is resp.ContentLength), and the
// buffered body. Errors: ErrUnknownUpstream, ErrInvalidPath, ErrUpstream
// (unreachable, or a body over MaxBody), and the runtime's (ErrOverloaded,
// ErrClosed).
func (c *Client) Fetch(ctx context.Context, upstream, path, rawQuery string) (*http.Response, error) {
	target, err := c.Target(upstream, path, rawQuery)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidPath, err)
	}
	req.Header.Set(secretHeader, c.secret)
	resp, err := c.ns.GetByName(ObjectName(upstream, path, rawQuery)).Fetch(req)
	if err != nil {
		if errors.Is(err, durable.ErrTooLarge) {
			return nil, fmt.Errorf("%w: response body over the runtime's MaxRequestBody", ErrUpstream)
		}
		return nil, err
	}
	if msg := resp.Header.Get(errorHeader); msg != "" {
		resp.Body.Close()
		return nil, fmt.Errorf("%w: %s", ErrUpstream, msg)
	}
	resp.Request = nil
	return resp, nil
}

// Waiting returns how many callers wait on the upstream request for
// (upstream, path, rawQuery), the first caller included: 0 when none is in
// flight. It is an event of the same object, so it also shows that the
// object is not blocked while they wait.
func (c *Client) Waiting(ctx context.Context, upstream, path, rawQuery string) (int, error) {
	if _, err := c.Target(upstream, path, rawQuery); err != nil {
		return 0, err
	}
	return durable.Call[int](ctx, c.ns.GetByName(ObjectName(upstream, path, rawQuery)), "Waiting", nil)
}

// upstreamResponse is what one upstream request produced, shared by its
// callers, who only read it.
type upstreamResponse struct {
	status int
	header http.Header
	body   []byte
}

// get makes the upstream request and buffers its answer.
func (c *Client) get(ctx context.Context, target string) (*upstreamResponse, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("upstream unreachable: %v", stripURL(err))
	}
	defer resp.Body.Close()
	if resp.ContentLength > c.maxBody {
		return nil, fmt.Errorf("upstream body of %d bytes is over the %d-byte limit", resp.ContentLength, c.maxBody)
	}
	var buf bytes.Buffer
	if resp.ContentLength > 0 {
		buf.Grow(int(resp.ContentLength))
	}
	n, err := buf.ReadFrom(io.LimitReader(resp.Body, c.maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("reading the upstream body: %v", stripURL(err))
	}
	if n > c.maxBody {
		return nil, fmt.Errorf("upstream body is over the %d-byte limit", c.maxBody)
	}
	h := resp.Header.Clone()
	if h == nil {
		h = http.Header{}
	}
	removeHopByHop(h)
	h.Del("Content-Length")
	h.Del(errorHeader)
	h.Del(secretHeader)
	return &upstreamResponse{status: resp.StatusCode, header: h, body: buf.Bytes()}, nil
}

// stripURL drops the URL from a client error: it may carry credentials.
func stripURL(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

// hopByHop are the headers of one connection (RFC 9110, section 7.6.1),
// besides those Connection names and the Proxy-* ones.
var hopByHop = []string{"Connection", "Keep-Alive", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// removeHopByHop deletes the hop-by-hop headers of h.
func removeHopByHop(h http.Header) {
	for _, v := range h["Connection"] {
		for _, name := range strings.Split(v, ",") {
			if name = textproto.TrimString(name); name != "" {
				h.Del(name)
			}
		}
	}
	for _, k := range hopByHop {
		h.Del(k)
	}
	for k := range h {
		if strings.HasPrefix(k, "Proxy-") {
			delete(h, k)
		}
	}
}
