package durable

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"sync/atomic"

	"github.com/durableobjects/durable/internal/actor"
)

// Stub is a client of one object. Each call is delivered to the object as
// one event; calls made through one stub arrive in the order they were
// made. A stub is safe for concurrent use.
type Stub struct {
	ns  *Namespace
	id  ID
	obj atomic.Pointer[object]
}

// ID returns the ID of the stub's object.
func (s *Stub) ID() ID { return s.id }

// send queues run as an event of the stub's object.
func (s *Stub) send(ctx context.Context, run func(ctx context.Context, o *object)) (<-chan error, error) {
	if s.id.ns != s.ns {
		return nil, fmt.Errorf("%w: ID belongs to another namespace", ErrInvalidID)
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
		done, err := o.submit(ctx, false, run)
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
	p := s.invoke(ctx, method, arg)
	return p.wait(ctx)
}

type pendingCall struct {
	done   <-chan error
	err    error
	result []byte
	herr   error
}

func (s *Stub) invoke(ctx context.Context, method string, arg []byte) *pendingCall {
	p := &pendingCall{}
	p.done, p.err = s.send(ctx, func(ctx context.Context, o *object) {
		p.result, p.herr = o.ns.methodsFor(reflect.TypeOf(o.inst)).invoke(ctx, o.inst, method, arg)
	})
	return p
}

func (p *pendingCall) wait(ctx context.Context) ([]byte, error) {
	if p.err != nil {
		return nil, p.err
	}
	if err := wait(ctx, p.done); err != nil {
		return nil, err
	}
	return p.result, p.herr
}

// Call calls an RPC method of the stub's object and decodes its result
// into an R. arg (nil for none) and the result are JSON-encoded. Errors from
// the method are returned as they are; writes the method made before
// returning an error are kept (use Storage.Transaction to undo them).
func Call[R any](ctx context.Context, s *Stub, method string, arg any) (R, error) {
	return Go[R](ctx, s, method, arg).Wait(ctx)
}

// Pending is an RPC call in flight.
type Pending[R any] struct {
	p   *pendingCall
	err error
}

// Go starts a call without waiting for it: the call is queued, in order
// with the stub's other calls, before Go returns.
func Go[R any](ctx context.Context, s *Stub, method string, arg any) *Pending[R] {
	var b []byte
	if arg != nil {
		var err error
		if b, err = json.Marshal(arg); err != nil {
			return &Pending[R]{err: fmt.Errorf("%w: %s: %v", ErrBadArgument, method, err)}
		}
	}
	return &Pending[R]{p: s.invoke(ctx, method, b)}
}

// Wait waits for the call's result.
func (p *Pending[R]) Wait(ctx context.Context) (R, error) {
	var r R
	if p.err != nil {
		return r, p.err
	}
	b, err := p.p.wait(ctx)
	if err != nil {
		return r, err
	}
	if len(b) > 0 {
		if err := json.Unmarshal(b, &r); err != nil {
			return r, fmt.Errorf("%w: result: %v", ErrBadArgument, err)
		}
	}
	return r, nil
}

// Fetch delivers an HTTP request to the object's ServeHTTP method as one
// event and returns its response, which is complete (status, headers, body)
// and released only after the event's writes are durable. Request and
// response bodies are limited to Runtime.MaxRequestBody.
func (s *Stub) Fetch(req *http.Request) (*http.Response, error) {
	limit := s.ns.rt.MaxRequestBody
	var body []byte
	if req.Body != nil {
		var err error
		body, err = io.ReadAll(io.LimitReader(req.Body, limit+1))
		req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("durable: read request body: %w", err)
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
	done, err := s.send(ctx, func(ctx context.Context, o *object) {
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
	if err := wait(ctx, done); err != nil {
		return nil, err
	}
	if herr != nil {
		return nil, herr
	}
	if rec.overflow {
		return nil, fmt.Errorf("%w: response body over %d bytes", ErrTooLarge, limit)
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

// recorder is the ResponseWriter a handler writes to inside its event.
type recorder struct {
	header   http.Header
	status   int
	body     bytes.Buffer
	limit    int64
	overflow bool
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
