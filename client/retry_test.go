package client_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/durableobjects/durable/client"
)

// op is one client method with what a fake server answers on success.
type op struct {
	name string
	// idempotent: retried after an ambiguous connection error.
	idempotent bool
	// passthrough: the status is an upstream's (Fetch, Object).
	passthrough bool
	call        func(ctx context.Context, c *client.Client) error
	status      int
	body        string
}

const (
	sessionBody = `{"id":"i","user_id":"u","data":null,"created_at_ms":1,"expires_at_ms":2}`
	eventBody   = `{"id":"e","run_at_ms":1,"repeat_ms":null,"payload":null,"target":"t","state":"scheduled","attempts":0,"last_fired_at_ms":null,"last_error":null}`
)

// ops lists every HTTP method of the client (DialDoc is tested apart).
var ops = []op{
	{"Healthz", true, false, func(ctx context.Context, c *client.Client) error { return c.Healthz(ctx) }, 200, `{"status":"ok"}`},
	{"Metrics", true, false, func(ctx context.Context, c *client.Client) error { _, err := c.Metrics(ctx); return err }, 200, "m 1\n"},
	{"CheckRateLimit", false, false, func(ctx context.Context, c *client.Client) error {
		_, err := c.CheckRateLimit(ctx, "k", client.CheckRequest{Limit: 1, Window: time.Second})
		return err
	}, 200, `{"allowed":true,"remaining":0,"reset_ms":1000}`},
	{"AcquireLock", false, false, func(ctx context.Context, c *client.Client) error {
		_, err := c.AcquireLock(ctx, "l", client.AcquireOptions{})
		return err
	}, 200, `{"token":"t","fencing":1,"expires_at_ms":1}`},
	{"RenewLock", true, false, func(ctx context.Context, c *client.Client) error {
		_, err := c.RenewLock(ctx, "l", "t", time.Second)
		return err
	}, 200, `{"expires_at_ms":1}`},
	{"ReleaseLock", true, false, func(ctx context.Context, c *client.Client) error { return c.ReleaseLock(ctx, "l", "t") }, 200, `{"released":true}`},
	{"GetLock", true, false, func(ctx context.Context, c *client.Client) error { _, err := c.GetLock(ctx, "l"); return err },
		200, `{"held":false,"fencing":0,"expires_at_ms":null,"owner":null}`},
	{"CreateSession", false, false, func(ctx context.Context, c *client.Client) error {
		_, err := c.CreateSession(ctx, client.CreateSessionRequest{UserID: "u"})
		return err
	}, 201, `{"id":"i","user_id":"u","expires_at_ms":1}`},
	{"GetSession", true, false, func(ctx context.Context, c *client.Client) error { _, err := c.GetSession(ctx, "i"); return err }, 200, sessionBody},
	{"PatchSession", true, false, func(ctx context.Context, c *client.Client) error {
		_, err := c.PatchSession(ctx, "i", client.SessionPatch{Data: 1})
		return err
	}, 200, sessionBody},
	{"DeleteSession", true, false, func(ctx context.Context, c *client.Client) error { return c.DeleteSession(ctx, "i") }, 204, ""},
	{"ListUserSessions", true, false, func(ctx context.Context, c *client.Client) error {
		_, err := c.ListUserSessions(ctx, "u")
		return err
	}, 200, `{"sessions":[]}`},
	{"RevokeUserSessions", true, false, func(ctx context.Context, c *client.Client) error {
		_, err := c.RevokeUserSessions(ctx, "u")
		return err
	}, 200, `{"revoked":0}`},
	{"PutEvent", true, false, func(ctx context.Context, c *client.Client) error {
		_, err := c.PutEvent(ctx, "s", "e", client.EventSpec{RunAt: time.Now(), Target: "t"})
		return err
	}, 200, eventBody},
	{"GetEvent", true, false, func(ctx context.Context, c *client.Client) error { _, err := c.GetEvent(ctx, "s", "e"); return err }, 200, eventBody},
	{"ListEvents", true, false, func(ctx context.Context, c *client.Client) error {
		_, err := c.ListEvents(ctx, "s", client.ListOptions{})
		return err
	}, 200, `{"events":[],"next_cursor":null}`},
	{"DeleteEvent", true, false, func(ctx context.Context, c *client.Client) error { return c.DeleteEvent(ctx, "s", "e") }, 204, ""},
	{"GetDoc", true, false, func(ctx context.Context, c *client.Client) error { _, err := c.GetDoc(ctx, "d"); return err }, 200, `{"content":"","version":0}`},
	{"PutDoc", false, false, func(ctx context.Context, c *client.Client) error { _, err := c.PutDoc(ctx, "d", "x"); return err }, 200, `{"version":1}`},
	{"PutDocIf", true, false, func(ctx context.Context, c *client.Client) error { _, err := c.PutDocIf(ctx, "d", "x", 0); return err }, 200, `{"version":1}`},
	{"Fetch", true, true, func(ctx context.Context, c *client.Client) error { return answerErr(c.Fetch(ctx, "up", "p", nil)) }, 200, "upstream body"},
	{"Object GET", true, true, func(ctx context.Context, c *client.Client) error {
		return answerErr(c.Object(ctx, client.ObjectRequest{Class: "k", Name: "n"}))
	}, 200, "object body"},
	{"Object POST", false, true, func(ctx context.Context, c *client.Client) error {
		return answerErr(c.Object(ctx, client.ObjectRequest{Class: "k", Name: "n", Method: "POST", Body: []byte("b")}))
	}, 200, "object body"},
	{"Object POST with Idempotency-Key", true, true, func(ctx context.Context, c *client.Client) error {
		return answerErr(c.Object(ctx, client.ObjectRequest{Class: "k", Name: "n", Method: "POST", Body: []byte("b"),
			Header: http.Header{"Idempotency-Key": {"k1"}}}))
	}, 200, "object body"},
}

// answerErr turns a passthrough answer into an error for the table: the
// server's own error body as its *Error, another non-2xx as a plain one.
func answerErr(resp *client.Response, err error) error {
	switch {
	case err != nil:
		return err
	case resp.APIError() != nil:
		return resp.APIError()
	case resp.Status >= 300:
		return errors.New(http.StatusText(resp.Status))
	}
	return nil
}

// fakeServer answers with answer(n) to its n-th request (from 1), where
// answer may hijack and drop the connection.
type fakeServer struct {
	*httptest.Server
	n      atomic.Int64
	mu     sync.Mutex
	tokens []string
}

type answer func(w http.ResponseWriter, r *http.Request)

func newFake(t *testing.T, answer func(n int64) answer) *fakeServer {
	f := &fakeServer{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		f.mu.Lock()
		f.tokens = append(f.tokens, r.Header.Get("Authorization"))
		f.mu.Unlock()
		answer(f.n.Add(1))(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

func drop(w http.ResponseWriter, r *http.Request) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		panic(err)
	}
	conn.Close()
}

func apiError(status int, code string, retryAfter string) answer {
	return func(w http.ResponseWriter, r *http.Request) {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, `{"error":{"code":"`+code+`","message":"test says `+code+`"}}`)
	}
}

func plain(status int, body string) answer {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

func (o op) success() answer {
	return func(w http.ResponseWriter, r *http.Request) {
		if !o.passthrough {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(o.status)
		io.WriteString(w, o.body)
	}
}

// sleeps records the client's waits instead of waiting.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleeps) all() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.d...)
}

// fakeClient is a client of url with its own connections and recorded
// sleeps.
func fakeClient(t *testing.T, url string, maxAttempts int) (*client.Client, *sleeps) {
	c, err := client.New(url)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	s := &sleeps{}
	c.HTTPClient = &http.Client{Transport: tr}
	c.Retry = client.Retry{MaxAttempts: maxAttempts, Sleep: s.sleep}
	return c, s
}

// Every request is retried after a 503 overloaded or unavailable, which
// says it had no effect, waiting at least Retry-After.
func TestRetryAfter503(t *testing.T) {
	for _, o := range ops {
		for _, code := range []string{client.CodeOverloaded, client.CodeUnavailable} {
			t.Run(o.name+"/"+code, func(t *testing.T) {
				f := newFake(t, func(n int64) answer {
					if n <= 2 {
						return apiError(503, code, "1")
					}
					return o.success()
				})
				c, s := fakeClient(t, f.URL, 5)
				c.Token = "tok"
				if err := o.call(testCtx(t), c); err != nil {
					t.Fatal(err)
				}
				if f.n.Load() != 3 {
					t.Fatalf("%d attempts, want 3", f.n.Load())
				}
				d := s.all()
				if len(d) != 2 || d[0] < time.Second || d[0] > 1100*time.Millisecond || d[1] < time.Second || d[1] > 1100*time.Millisecond {
					t.Fatalf("waits %v, want two in [1s, 1.1s]", d)
				}
				for _, tok := range f.tokens {
					if tok != "Bearer tok" {
						t.Fatalf("Authorization %q on an attempt", tok)
					}
				}
			})
		}
	}
}

// After a dropped connection the request may have taken effect: only
// idempotent requests are sent again.
func TestRetryAfterDroppedConnection(t *testing.T) {
	for _, o := range ops {
		t.Run(o.name, func(t *testing.T) {
			f := newFake(t, func(int64) answer { return drop })
			c, _ := fakeClient(t, f.URL, 4)
			err := o.call(testCtx(t), c)
			if !errors.Is(err, client.ErrUnknownOutcome) {
				t.Fatalf("error %v, want ErrUnknownOutcome", err)
			}
			var e *client.Error
			if errors.As(err, &e) {
				t.Fatalf("a dropped connection is not an answer: %v", err)
			}
			want := int64(1)
			if o.idempotent {
				want = 4
			}
			if f.n.Load() != want {
				t.Fatalf("%d attempts, want %d", f.n.Load(), want)
			}
		})
	}
}

// An idempotent request whose connection dropped is retried and
// succeeds.
func TestRetryAfterOneDrop(t *testing.T) {
	for _, o := range ops {
		if !o.idempotent {
			continue
		}
		t.Run(o.name, func(t *testing.T) {
			f := newFake(t, func(n int64) answer {
				if n == 1 {
					return drop
				}
				return o.success()
			})
			c, s := fakeClient(t, f.URL, 4)
			if err := o.call(testCtx(t), c); err != nil {
				t.Fatal(err)
			}
			if f.n.Load() != 2 || len(s.all()) != 1 {
				t.Fatalf("%d attempts, waits %v", f.n.Load(), s.all())
			}
		})
	}
}

// A 503 without api.md's codes (a proxy's) may or may not have had an
// effect: retried like a dropped connection, and never when the status
// is an upstream's.
func TestRetryAfterForeign503(t *testing.T) {
	for _, o := range ops {
		t.Run(o.name, func(t *testing.T) {
			f := newFake(t, func(int64) answer { return plain(503, "busy") })
			c, _ := fakeClient(t, f.URL, 3)
			err := o.call(testCtx(t), c)
			if err == nil {
				t.Fatal("no error")
			}
			want := int64(1)
			if o.idempotent && !o.passthrough {
				want = 3
			}
			if f.n.Load() != want {
				t.Fatalf("%d attempts, want %d", f.n.Load(), want)
			}
			var e *client.Error
			if !o.passthrough && (!errors.As(err, &e) || e.Status != 503 || e.Code != "" || e.Message != "busy" || client.IsTemporary(err)) {
				t.Fatalf("error %#v", err)
			}
			// The proxy may have passed the request on: the outcome is
			// unknown, whether or not the client tried again.
			if !o.passthrough && !errors.Is(err, client.ErrUnknownOutcome) {
				t.Fatalf("error %v is not marked ErrUnknownOutcome", err)
			}
		})
	}
}

// Retries stop at MaxAttempts; the last answer is the error.
func TestRetryAttemptCap(t *testing.T) {
	for _, o := range ops {
		t.Run(o.name, func(t *testing.T) {
			f := newFake(t, func(int64) answer { return apiError(503, client.CodeOverloaded, "") })
			c, s := fakeClient(t, f.URL, 4)
			err := o.call(testCtx(t), c)
			var e *client.Error
			if !errors.Is(err, client.ErrOverloaded) || !client.IsTemporary(err) || !errors.As(err, &e) || e.Status != 503 || e.Message != "test says overloaded" {
				t.Fatalf("error %v, want 503 overloaded", err)
			}
			if errors.Is(err, client.ErrUnknownOutcome) {
				t.Fatalf("marked unknown outcome: %v", err)
			}
			if f.n.Load() != 4 || len(s.all()) != 3 {
				t.Fatalf("%d attempts, %d waits; want 4 and 3", f.n.Load(), len(s.all()))
			}
		})
	}
}

// Other answers are verdicts: never retried.
func TestNoRetryOfVerdicts(t *testing.T) {
	for _, a := range []answer{
		apiError(400, client.CodeInvalidArgument, ""), apiError(409, client.CodeLockHeld, ""),
		apiError(500, client.CodeInternal, ""), apiError(502, client.CodeBadGateway, ""), plain(502, "proxy"),
		apiError(429, client.CodeRateLimited, "1"),
	} {
		f := newFake(t, func(int64) answer { return a })
		c, s := fakeClient(t, f.URL, 5)
		c.GetLock(testCtx(t), "l")
		if f.n.Load() != 1 || len(s.all()) != 0 {
			t.Fatalf("%d attempts", f.n.Load())
		}
	}
	// A 429 from a rate-limit check is a result.
	f := newFake(t, func(int64) answer {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "2")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(429)
			io.WriteString(w, `{"allowed":false,"remaining":0,"retry_after_ms":1500,"error":{"code":"rate_limited","message":"no"}}`)
		}
	})
	c, _ := fakeClient(t, f.URL, 5)
	res, err := c.CheckRateLimit(testCtx(t), "k", client.CheckRequest{Limit: 1, Window: time.Second})
	if err != nil || res.Allowed || res.RetryAfter != 1500*time.Millisecond || f.n.Load() != 1 {
		t.Fatalf("429: %+v, %v, %d attempts", res, err, f.n.Load())
	}
}

// The client neither retries before Retry-After nor waits past
// MaxDelay: a longer Retry-After ends the retries at once.
func TestRetryAfterOverMaxDelay(t *testing.T) {
	f := newFake(t, func(int64) answer { return apiError(503, client.CodeOverloaded, "30") })
	c, s := fakeClient(t, f.URL, 5)
	_, err := c.CheckRateLimit(testCtx(t), "k", client.CheckRequest{Limit: 1, Window: time.Second})
	var e *client.Error
	if !errors.As(err, &e) || e.Code != client.CodeOverloaded || e.RetryAfter != 30*time.Second {
		t.Fatalf("error %v", err)
	}
	if f.n.Load() != 1 || len(s.all()) != 0 {
		t.Fatalf("%d attempts, waits %v", f.n.Load(), s.all())
	}
	// An HTTP-date Retry-After is honoured too.
	f = newFake(t, func(n int64) answer {
		if n == 1 {
			return apiError(503, client.CodeOverloaded, time.Now().Add(3*time.Second).UTC().Format(http.TimeFormat))
		}
		return ops[0].success()
	})
	c, s = fakeClient(t, f.URL, 5)
	if err := c.Healthz(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if d := s.all(); len(d) != 1 || d[0] < time.Second || d[0] > 3300*time.Millisecond {
		t.Fatalf("waits %v for an HTTP-date 3 s away", d)
	}
}

// Retries stop at ctx's deadline: before a wait that would pass it, and
// during a wait that it interrupts.
func TestRetryStopsAtDeadline(t *testing.T) {
	f := newFake(t, func(int64) answer { return apiError(503, client.CodeOverloaded, "2") })
	c, s := fakeClient(t, f.URL, 100)
	ctx, cancel := context.WithTimeout(testCtx(t), time.Second)
	defer cancel()
	_, err := c.GetLock(ctx, "l")
	if !errors.Is(err, client.ErrOverloaded) || !errors.Is(err, context.DeadlineExceeded) || f.n.Load() != 1 || len(s.all()) != 0 {
		t.Fatalf("Retry-After past the deadline: %v, %d attempts, waits %v", err, f.n.Load(), s.all())
	}

	// With real waits (no Retry-After): the deadline ends the call long
	// before 100 attempts.
	f = newFake(t, func(int64) answer { return apiError(503, client.CodeUnavailable, "") })
	c, _ = fakeClient(t, f.URL, 100)
	c.Retry.Sleep = nil
	c.Retry.BaseDelay = 20 * time.Millisecond
	c.Retry.MaxDelay = 50 * time.Millisecond
	ctx, cancel = context.WithTimeout(testCtx(t), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = c.GetLock(ctx, "l")
	// The deadline falls between attempts (the last 503 is returned) or
	// during one (the request's own error).
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, client.ErrUnavailable) && !errors.Is(err, client.ErrUnknownOutcome) {
		t.Fatalf("error %v", err)
	}
	if n := f.n.Load(); n < 2 || n >= 100 || time.Since(start) > 10*time.Second {
		t.Fatalf("%d attempts in %v", n, time.Since(start))
	}

	// A deadline that passes while a request is in flight ends the call
	// (no retry, even of a read), and the request may have taken effect.
	release := make(chan struct{})
	defer close(release)
	f = newFake(t, func(int64) answer {
		return func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-release:
			}
		}
	})
	c, _ = fakeClient(t, f.URL, 100)
	ctx, cancel = context.WithTimeout(testCtx(t), 100*time.Millisecond)
	defer cancel()
	_, err = c.GetLock(ctx, "l")
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, client.ErrUnknownOutcome) || f.n.Load() != 1 {
		t.Fatalf("deadline in flight: %v, %d attempts", err, f.n.Load())
	}

	// Cancelling stops a wait.
	f = newFake(t, func(int64) answer { return apiError(503, client.CodeOverloaded, "") })
	c, _ = fakeClient(t, f.URL, 100)
	ctx, cancel = context.WithCancel(testCtx(t))
	c.Retry.Sleep = func(ctx context.Context, d time.Duration) error { cancel(); <-ctx.Done(); return ctx.Err() }
	_, err = c.AcquireLock(ctx, "l", client.AcquireOptions{})
	if !errors.Is(err, client.ErrOverloaded) || !errors.Is(err, context.Canceled) || f.n.Load() != 1 {
		t.Fatalf("cancelled: %v, %d attempts", err, f.n.Load())
	}
}

// A failed dial proves the request never left: every request is retried,
// and the error does not claim an unknown outcome.
func TestRetryAfterFailedDial(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	for _, o := range ops {
		t.Run(o.name, func(t *testing.T) {
			c, s := fakeClient(t, "http://"+addr, 3)
			err := o.call(testCtx(t), c)
			var op *net.OpError
			if !errors.As(err, &op) || op.Op != "dial" || errors.Is(err, client.ErrUnknownOutcome) {
				t.Fatalf("error %v", err)
			}
			if len(s.all()) != 2 {
				t.Fatalf("waits %v, want 2 (3 attempts)", s.all())
			}
		})
	}
}

// A dial that never connects, cut short by the HTTP client's timeout, sent
// nothing: every request is retried after it, and the error is not marked.
func TestRetryAfterDialTimeout(t *testing.T) {
	for _, o := range ops {
		t.Run(o.name, func(t *testing.T) {
			c, s := fakeClient(t, "http://127.0.0.1:9", 3)
			var dials atomic.Int64
			c.HTTPClient = &http.Client{Timeout: 50 * time.Millisecond, Transport: &http.Transport{
				DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
					dials.Add(1)
					<-ctx.Done() // a SYN nobody answers
					return nil, ctx.Err()
				},
			}}
			err := o.call(testCtx(t), c)
			if err == nil || errors.Is(err, client.ErrUnknownOutcome) {
				t.Fatalf("error %v", err)
			}
			if dials.Load() != 3 || len(s.all()) != 2 {
				t.Fatalf("%d dials, waits %v; want 3 attempts", dials.Load(), s.all())
			}
		})
	}
}

// A context that ends while a retry is still connecting (nothing sent)
// ends the call with the last answer, a 503 that had no effect, stopped by
// the context: not with the bare context error, which would hide why the
// call was retrying, and not marked, since nothing may have acted.
func TestDeadlineBeforeARetryLeavesReturnsTheLastFailure(t *testing.T) {
	f := newFake(t, func(int64) answer { return apiError(503, client.CodeUnavailable, "") })
	c, s := fakeClient(t, f.URL, 5)
	var dials atomic.Int64
	var d net.Dialer
	c.HTTPClient = &http.Client{Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if dials.Add(1) == 1 {
				return d.DialContext(ctx, network, addr)
			}
			<-ctx.Done() // the retry's dial outlives the deadline
			return nil, ctx.Err()
		},
	}}
	ctx, cancel := context.WithTimeout(testCtx(t), 200*time.Millisecond)
	defer cancel()
	_, err := c.GetLock(ctx, "l")
	if !errors.Is(err, client.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, client.ErrUnknownOutcome) {
		t.Fatalf("error %v", err)
	}
	if f.n.Load() != 1 || dials.Load() != 2 || len(s.all()) != 1 {
		t.Fatalf("%d requests, %d dials, waits %v", f.n.Load(), dials.Load(), s.all())
	}
}

// A call on a context that has already ended sends nothing and is not
// marked.
func TestNothingSentOnAnEndedContext(t *testing.T) {
	f := newFake(t, func(int64) answer { return plain(200, "") })
	for _, o := range ops {
		t.Run(o.name, func(t *testing.T) {
			c, _ := fakeClient(t, f.URL, 3)
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			if err := o.call(ctx, c); !errors.Is(err, context.Canceled) || errors.Is(err, client.ErrUnknownOutcome) {
				t.Fatalf("error %v", err)
			}
		})
	}
	if n := f.n.Load(); n != 0 {
		t.Fatalf("%d requests reached the server", n)
	}
}

// An answer to a retry after a lost attempt may describe what the lost
// attempt did: it is marked ErrUnknownOutcome.
func TestAnswerAfterLostAttemptIsMarked(t *testing.T) {
	f := newFake(t, func(n int64) answer {
		if n == 1 {
			return drop
		}
		return apiError(409, client.CodeNotOwner, "")
	})
	c, _ := fakeClient(t, f.URL, 3)
	err := c.ReleaseLock(testCtx(t), "l", "t")
	if !errors.Is(err, client.ErrNotOwner) || !errors.Is(err, client.ErrUnknownOutcome) || !client.IsConflict(err) || f.n.Load() != 2 {
		t.Fatalf("release after a lost attempt: %v (%d attempts)", err, f.n.Load())
	}
	// A proxy's 503 may hide a request the server did act on.
	f = newFake(t, func(n int64) answer {
		if n == 1 {
			return plain(503, "proxy busy")
		}
		return apiError(404, client.CodeNotFound, "")
	})
	c, _ = fakeClient(t, f.URL, 3)
	if err := c.DeleteSession(testCtx(t), "s"); !client.IsNotFound(err) || !errors.Is(err, client.ErrUnknownOutcome) || f.n.Load() != 2 {
		t.Fatalf("delete after a proxy's 503: %v (%d attempts)", err, f.n.Load())
	}
	// The same answer with no lost attempt before it is plain.
	f = newFake(t, func(int64) answer { return apiError(409, client.CodeNotOwner, "") })
	c, _ = fakeClient(t, f.URL, 3)
	if err := c.ReleaseLock(testCtx(t), "l", "t"); !errors.Is(err, client.ErrNotOwner) || errors.Is(err, client.ErrUnknownOutcome) {
		t.Fatalf("release: %v", err)
	}
}

// The WebSocket handshake is retried after a 503 overloaded, and the
// connection then works (through a proxy to a real server).
func TestDialDocRetries(t *testing.T) {
	s := newServer(t)
	target, _ := url.Parse(s.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var n atomic.Int64
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch n.Add(1) {
		case 1:
			// A new connection for the next attempt, so the transport
			// does not replay the dropped handshake on its own.
			w.Header().Set("Connection", "close")
			apiError(503, client.CodeOverloaded, "1")(w, r)
		case 2:
			drop(w, r)
		default:
			proxy.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(front.Close)
	c, sl := fakeClient(t, front.URL, 5)
	ctx := testCtx(t)
	d, err := c.DialDoc(ctx, "doc")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if n.Load() != 3 || len(sl.all()) != 2 || sl.all()[0] < time.Second || d.Init.Type != client.MsgInit {
		t.Fatalf("%d attempts, waits %v, init %+v", n.Load(), sl.all(), d.Init)
	}
	if err := d.Edit(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	if m, err := d.Read(ctx); err != nil || m.Type != client.MsgAck || m.Version != 1 {
		t.Fatalf("ack %+v, %v", m, err)
	}
	// A refused handshake is an *Error.
	c.Retry.MaxAttempts = 1
	n.Store(0)
	_, err = c.DialDoc(ctx, "doc")
	if !errors.Is(err, client.ErrOverloaded) {
		t.Fatalf("refused handshake: %v", err)
	}
	n.Store(10)
	if _, err := c.DialDoc(ctx, strings.Repeat("x", 300)); !errors.Is(err, client.ErrInvalidArgument) {
		t.Fatalf("bad id: %v", err)
	}
}

// A request that cannot be made is not retried.
func TestNoRetryOfMalformedRequest(t *testing.T) {
	f := newFake(t, func(int64) answer { return ops[0].success() })
	c, s := fakeClient(t, f.URL, 5)
	_, err := c.Object(testCtx(t), client.ObjectRequest{Class: "k", Name: "n", Method: "NOT A METHOD",
		Header: http.Header{"Idempotency-Key": {"1"}}})
	if err == nil || errors.Is(err, client.ErrUnknownOutcome) || len(s.all()) != 0 || f.n.Load() != 0 {
		t.Fatalf("malformed request: %v, waits %v", err, s.all())
	}
}

// roundTripFunc is a transport that reports nothing to an httptrace.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// With a transport that does not report to the trace, a failure is not
// taken for "not sent": operations that must not run twice are not
// retried, and the error is marked.
func TestUntracedTransportFailuresAreUnknownOutcomes(t *testing.T) {
	c, _ := fakeClient(t, "http://127.0.0.1:9", 3)
	var calls atomic.Int64
	c.HTTPClient = &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
		calls.Add(1)
		return nil, errors.New("connection reset (after the request went out)")
	})}
	_, err := c.AcquireLock(testCtx(t), "l", client.AcquireOptions{})
	if !errors.Is(err, client.ErrUnknownOutcome) || calls.Load() != 1 {
		t.Fatalf("%d attempts, error %v; want 1, marked", calls.Load(), err)
	}
}
