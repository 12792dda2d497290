package durable

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"reflect"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/durableobjects/durable/internal/actor"
	"github.com/durableobjects/durable/internal/hibernate"
)

// Stub is a client of one object. Each call is delivered to the object as
// one event; calls made through one stub arrive in the order they were
// made. A stub is safe for concurrent use.
type Stub struct {
	ns    *Namespace
	id    ID
	obj   *atomic.Pointer[object]
	retry Retry
}

// Retry is how a stub retries calls refused with ErrOverloaded, which had no
// effect and are always safe to retry. Stubs retry with the runtime's
// StubRetry (DefaultRetry unless set); Attempts of 1 or less (the zero
// Retry given to WithRetry) does not retry.
type Retry struct {
	Attempts int           // calls in all, the first included; <= 1 means no retry
	Base     time.Duration // wait before the first retry; doubles each time
	Max      time.Duration // longest wait
}

// Defaults of DefaultRetry.
const (
	DefaultRetryAttempts = 5
	DefaultRetryBase     = 10 * time.Millisecond
	DefaultRetryMax      = 500 * time.Millisecond
)

// DefaultRetry makes five attempts, waiting 5–10, 10–20, 20–40 and 40–80 ms
// between them (at most 150 ms in all).
var DefaultRetry = Retry{Attempts: DefaultRetryAttempts, Base: DefaultRetryBase, Max: DefaultRetryMax}

// WithRetry returns a stub for the same object that retries calls refused
// with ErrOverloaded, with exponential backoff and jitter, within the
// caller's context.
func (s *Stub) WithRetry(r Retry) *Stub {
	return &Stub{ns: s.ns, id: s.id, obj: s.obj, retry: r}
}

// wait returns the wait before retry n (1-based): Base·2^(n-1) capped at
// Max, with jitter, a random point in its upper half.
func (r Retry) wait(n int) time.Duration {
	d := r.Base << min(n-1, 20)
	if d <= 0 || d > r.Max {
		d = r.Max
	}
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

// ID returns the ID of the stub's object.
func (s *Stub) ID() ID { return s.id }

// send queues run as an event of the stub's object, retrying as the
// stub's Retry says while the object is overloaded.
func (s *Stub) send(ctx context.Context, inline bool, run func(ctx context.Context, o *object)) (<-chan error, error) {
	for attempt := 1; ; attempt++ {
		done, err := s.sendOnce(ctx, inline, run)
		if err == nil || !errors.Is(err, ErrOverloaded) || attempt >= s.retry.Attempts {
			return done, err
		}
		t := time.NewTimer(s.retry.wait(attempt))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, err
		}
	}
}

func (s *Stub) sendOnce(ctx context.Context, inline bool, run func(ctx context.Context, o *object)) (<-chan error, error) {
	if s.id.ns != s.ns {
		return nil, fmt.Errorf("%w: ID belongs to another namespace", ErrInvalidID)
	}
	if s.ns.rt.stopping.Load() {
		return nil, ErrClosed // also for a stub that still holds its live object
	}
	for {
		o := s.obj.Load()
		if o == nil || o.dead.Load() {
			var err error
			if o, err = s.ns.rt.lookup(s.ns, s.id.raw); err != nil {
				return nil, err
			}
			if s.id.name != "" && o.name.Load() == nil {
				o.name.Store(&s.id.name)
			}
			s.obj.Store(o)
		}
		if info, ok := ctx.Value(eventKey{}).(*eventInfo); ok && info.o == o && o.actor.HoldsGate(info.ev) {
			return nil, ErrReentrant
		}
		done, err := o.submitEvent(ctx, &actor.Event{}, inline, run)
		if errors.Is(err, actor.ErrEvicted) {
			continue // evicted between lookup and enqueue: activate it again
		}
		return done, err
	}
}

// wait returns the event's outcome, or ctx's error if ctx ends first (the
// event may still run).
func wait(ctx context.Context, done <-chan error) error {
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Invoke calls method with a JSON-encoded argument and returns the
// JSON-encoded result. Call is the typed form.
func (s *Stub) Invoke(ctx context.Context, method string, arg []byte) ([]byte, error) {
	p := s.invoke(ctx, method, rpcArg{json: arg}, nil, true)
	res, err := p.wait(ctx)
	return res.json, err
}

type pendingCall struct {
	done   <-chan error
	err    error
	result rpcResult
	herr   error
}

// invoke sends a call; inline says the caller waits for it at once, so
// its goroutine may run the call itself.
func (s *Stub) invoke(ctx context.Context, method string, arg rpcArg, want reflect.Type, inline bool) *pendingCall {
	p := &pendingCall{}
	p.done, p.err = s.send(ctx, inline, func(ctx context.Context, o *object) {
		p.result, p.herr = o.ns.methodsFor(reflect.TypeOf(o.inst)).invoke(ctx, o.inst, method, arg, want)
	})
	return p
}

func (p *pendingCall) wait(ctx context.Context) (rpcResult, error) {
	if p.err != nil {
		return rpcResult{}, p.err
	}
	if err := wait(ctx, p.done); err != nil {
		return rpcResult{}, err
	}
	return p.result, p.herr
}

// Call calls an RPC method of the stub's object and decodes its result
// into an R. arg (nil for none) and the result are JSON-encoded, except
// that a plain value (see the package doc) the JSON encoding would give
// back unchanged passes as itself: a copy, sharing nothing. Errors from
// the method are returned as they are; writes the method made before
// returning an error are kept (use Storage.Transaction to undo them).
func Call[R any](ctx context.Context, s *Stub, method string, arg any) (R, error) {
	return start[R](ctx, s, method, arg, true).Wait(ctx)
}

// Pending is an RPC call in flight.
type Pending[R any] struct {
	p   *pendingCall
	err error
}

// Go starts a call without waiting for it: the call is queued, in order
// with the stub's other calls, before Go returns.
func Go[R any](ctx context.Context, s *Stub, method string, arg any) *Pending[R] {
	return start[R](ctx, s, method, arg, false)
}

// start is Go; inline says the caller waits for the result at once (Call).
func start[R any](ctx context.Context, s *Stub, method string, arg any, inline bool) *Pending[R] {
	var a rpcArg
	switch {
	case passesAsValue(arg):
		a.value = arg
	case arg != nil:
		var err error
		if a.json, err = json.Marshal(arg); err != nil {
			return &Pending[R]{err: fmt.Errorf("%w: %s: %v", ErrBadArgument, method, err)}
		}
	}
	var want reflect.Type
	if t := reflect.TypeFor[R](); isPlain(t) {
		want = t
	}
	return &Pending[R]{p: s.invoke(ctx, method, a, want, inline)}
}

// Wait waits for the call's result.
func (p *Pending[R]) Wait(ctx context.Context) (R, error) {
	var r R
	if p.err != nil {
		return r, p.err
	}
	res, err := p.p.wait(ctx)
	if err != nil {
		return r, err
	}
	if res.isValue {
		return res.value.(R), nil
	}
	if b := res.json; len(b) > 0 {
		if err := json.Unmarshal(b, &r); err != nil {
			return r, fmt.Errorf("%w: result: %v", ErrBadArgument, err)
		}
	}
	return r, nil
}

// Fetch delivers an HTTP request to the object's ServeHTTP method as one
// event and returns its response, which is complete (status, headers, body)
// and released only after the event's writes are durable. Request and
// response bodies are limited to Runtime.MaxRequestBody. WebSocket upgrades
// need the connection: use Handle or ServeHTTP for them.
func (s *Stub) Fetch(req *http.Request) (*http.Response, error) {
	rec, err := s.fetch(req)
	if err != nil {
		return nil, err
	}
	if rec.socket != nil {
		s.ns.rt.sockets.Remove(rec.socket)
		return nil, fmt.Errorf("%w: Fetch cannot complete a WebSocket upgrade; use Stub.Handle", ErrNotWebSocket)
	}
	status := rec.status
	if status == 0 {
		status = http.StatusOK
	}
	return &http.Response{
		Status:        strconv.Itoa(status) + " " + http.StatusText(status),
		StatusCode:    status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        rec.header,
		Body:          io.NopCloser(bytes.NewReader(rec.body.Bytes())),
		ContentLength: int64(rec.body.Len()),
		Request:       req,
	}, nil
}

// Handle serves r from the object: the object's ServeHTTP runs as one
// event, and its response is written to w once the event's writes are
// durable. If the object accepted a WebSocket (State.AcceptWebSocket), Handle
// completes the upgrade on w's connection and hands the socket to the
// runtime. Handle returns an error, having written nothing, when the event
// could not run (ErrOverloaded, ErrClosed, ErrForbiddenOrigin, ...).
func (s *Stub) Handle(w http.ResponseWriter, r *http.Request) error {
	if isUpgrade(r) {
		if err := checkOrigin(r, s.ns.rt.WebSocketOriginPatterns); err != nil {
			return err
		}
	}
	rec, err := s.fetch(r)
	if err != nil {
		return err
	}
	if rec.socket != nil {
		rt := s.ns.rt
		conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: rt.WebSocketOriginPatterns})
		if err != nil {
			// Accept has answered the client; tell the object the socket is gone.
			rt.sockets.Remove(rec.socket)
			rt.deliverSocket(rec.socket, hibernate.Event{Kind: hibernate.Close, Code: int(websocket.StatusAbnormalClosure)})
			return nil
		}
		rt.sockets.Attach(rec.socket, conn)
		return nil
	}
	h := w.Header()
	for k, v := range rec.header {
		h[k] = v
	}
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	w.WriteHeader(rec.status)
	w.Write(rec.body.Bytes())
	return nil
}

// ServeHTTP is Handle for use as an http.Handler: errors are answered with
// 503 (and Retry-After) when the object is overloaded or closing, else 500.
func (s *Stub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	err := s.Handle(w, r)
	switch {
	case err == nil:
	case errors.Is(err, ErrOverloaded), errors.Is(err, ErrClosed):
		w.Header().Set("Retry-After", "1")
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
	case errors.Is(err, ErrTooLarge):
		http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
	case errors.Is(err, ErrForbiddenOrigin):
		http.Error(w, err.Error(), http.StatusForbidden)
	default:
		http.Error(w, "internal error", http.StatusInternalServerError)
	}
}

func (s *Stub) fetch(req *http.Request) (*recorder, error) {
	limit := s.ns.rt.MaxRequestBody
	var body []byte
	if req.Body != nil {
		var err error
		body, err = io.ReadAll(io.LimitReader(req.Body, limit+1))
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, fmt.Errorf("%w: request body over %d bytes", ErrTooLarge, tooBig.Limit)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadRequestBody, err)
		}
		if int64(len(body)) > limit {
			return nil, fmt.Errorf("%w: request body over %d bytes", ErrTooLarge, limit)
		}
	}
	ctx := req.Context()
	in := req.Clone(ctx)
	in.Body = io.NopCloser(bytes.NewReader(body))
	in.ContentLength = int64(len(body))
	rec := &recorder{header: http.Header{}, limit: limit}
	var herr error
	done, err := s.send(ctx, true, func(ctx context.Context, o *object) {
		h, ok := o.inst.(http.Handler)
		if !ok {
			herr = fmt.Errorf("%w: %T is not an http.Handler", ErrNoHandler, o.inst)
			return
		}
		h.ServeHTTP(rec, in.WithContext(ctx))
	})
	if err != nil {
		return nil, err
	}
	select {
	case err := <-done:
		if err != nil {
			// The event failed (a panic, a failed commit): a socket it
			// accepted will never be connected.
			if rec.socket != nil {
				s.ns.rt.sockets.Remove(rec.socket)
			}
			return nil, err
		}
	case <-ctx.Done():
		// The caller gave up, but the event may still run and accept a
		// socket nobody will connect: drop it once the event is over.
		go func() {
			<-done
			if rec.socket != nil {
				s.ns.rt.sockets.Remove(rec.socket)
			}
		}()
		return nil, ctx.Err()
	}
	if herr != nil {
		return nil, herr
	}
	if rec.overflow {
		if rec.socket != nil {
			s.ns.rt.sockets.Remove(rec.socket)
		}
		return nil, fmt.Errorf("%w: response body over %d bytes", ErrTooLarge, limit)
	}
	return rec, nil
}

// recorder is the ResponseWriter a handler writes to inside its event.
type recorder struct {
	header   http.Header
	status   int
	body     bytes.Buffer
	limit    int64
	overflow bool
	socket   *hibernate.Socket // accepted WebSocket, upgraded after the event
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	if int64(r.body.Len()+len(p)) > r.limit {
		r.overflow = true
		return 0, ErrTooLarge
	}
	return r.body.Write(p)
}
