package scheduler

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"
	"unicode/utf8"

	"github.com/durableobjects/durable"
)

// Class is the name the scheduler objects are registered under.
const Class = "scheduler"

// Limits of an event (api.md, "Scheduled events"). Times are milliseconds.
const (
	// MinRepeat is the shortest repeat_ms.
	MinRepeat = 1000
	// MaxTime is the latest run_at_ms (9999-12-31T23:59:59.999Z) and the
	// longest repeat_ms; bounding both keeps every slot computation far
	// from int64 overflow.
	MaxTime = 253402300799999
	// MaxPayload is the largest payload, in bytes of compact JSON.
	MaxPayload = 64 << 10
)

// Delivery policy (api.md): a failed delivery is tried again after
// RetryInitial, doubling each time up to RetryMax, plus up to 25 % jitter;
// after MaxAttempts failed deliveries of one run_at_ms the event is failed.
const (
	MaxAttempts    = 10
	RetryInitial   = time.Second
	RetryMax       = 5 * time.Minute
	DefaultTimeout = 10 * time.Second
)

// Defaults of Options.
const (
	// DefaultConcurrency bounds the webhook requests one scheduler has in
	// flight at once.
	DefaultConcurrency = 16
	// DefaultBatch bounds the events one alarm run delivers; more due
	// events are taken by the next run, which follows at once.
	DefaultBatch = 128
)

// Paging of List.
const (
	DefaultListLimit = 100
	MaxListLimit     = 1000
)

// Event states.
const (
	StateScheduled = "scheduled"
	StateFailed    = "failed"
)

// Options configure the scheduler class.
type Options struct {
	// Webhooks are the delivery targets, by name: absolute http or https URLs.
	Webhooks map[string]string
	// Client sends the webhook requests; http.DefaultClient's transport if
	// nil. Redirects are never followed (a 3xx answer is a failed delivery).
	Client *http.Client
	// Timeout is how long a delivery waits for an answer; DefaultTimeout if 0.
	Timeout time.Duration
	// Concurrency bounds each scheduler's webhook requests in flight;
	// DefaultConcurrency if 0.
	Concurrency int
	// Batch bounds the events one alarm run delivers; DefaultBatch if 0.
	Batch int
}

// config is the class-wide configuration every object shares; it never
// changes after Register.
type config struct {
	targets     map[string]string
	http        *http.Client
	timeout     time.Duration
	concurrency int
	batch       int
}

// Client manages the events of schedulers by name. Each name is one object
// of the class Class. A Client is safe for concurrent use.
type Client struct {
	ns  *durable.Namespace
	cfg *config
}

// Register registers the scheduler class on rt (which must not be open
// yet) and returns a client for it. Every webhook URL must be an absolute
// http or https URL.
func Register(rt *durable.Runtime, opts Options) (*Client, error) {
	cfg := &config{
		targets:     map[string]string{},
		timeout:     opts.Timeout,
		concurrency: opts.Concurrency,
		batch:       opts.Batch,
	}
	for name, raw := range opts.Webhooks {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("scheduler: webhook %q: %q is not an absolute http(s) URL", name, raw)
		}
		cfg.targets[name] = raw
	}
	hc := http.Client{}
	if opts.Client != nil {
		hc = *opts.Client
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	cfg.http = &hc
	if cfg.timeout <= 0 {
		cfg.timeout = DefaultTimeout
	}
	if cfg.concurrency <= 0 {
		cfg.concurrency = DefaultConcurrency
	}
	if cfg.batch <= 0 {
		cfg.batch = DefaultBatch
	}
	ns, err := rt.Register(Class, func(st *durable.State) any {
		o := &object{st: st, cfg: cfg}
		st.BlockConcurrencyWhile(o.load)
		return o
	})
	if err != nil {
		return nil, err
	}
	return &Client{ns: ns, cfg: cfg}, nil
}

// Spec is what a client sets on an event: the body of a PUT.
type Spec struct {
	// RunAtMS is when to deliver, in ms since the epoch: 0..MaxTime. A time
	// in the past is delivered at once.
	RunAtMS int64 `json:"run_at_ms"`
	// RepeatMS, when set (MinRepeat..MaxTime), makes the event repeat:
	// after a delivery it moves to the next slot RunAtMS + k·RepeatMS in
	// the future. Nil for a one-shot event.
	RepeatMS *int64 `json:"repeat_ms"`
	// Payload is any JSON value of at most MaxPayload bytes (compacted);
	// empty means null.
	Payload json.RawMessage `json:"payload"`
	// Target names a configured webhook.
	Target string `json:"target"`
}

// Event is an event as stored: the body of a GET.
type Event struct {
	ID       string          `json:"id"`
	RunAtMS  int64           `json:"run_at_ms"`
	RepeatMS *int64          `json:"repeat_ms"`
	Payload  json.RawMessage `json:"payload"`
	Target   string          `json:"target"`
	// State is StateScheduled, or StateFailed once MaxAttempts deliveries
	// of one run_at_ms failed (a failed event is never delivered again
	// unless a PUT replaces it).
	State string `json:"state"`
	// Attempts counts the failed deliveries of the current RunAtMS.
	Attempts int `json:"attempts"`
	// LastFiredAtMS is when the last delivery attempt was made; nil before
	// the first.
	LastFiredAtMS *int64 `json:"last_fired_at_ms"`
	// LastError describes the last failed delivery; nil before the first.
	LastError *string `json:"last_error"`
}

// Page is one page of List.
type Page struct {
	Events []Event `json:"events"`
	// NextCursor continues the listing after this page; nil when no event
	// follows it.
	NextCursor *string `json:"next_cursor"`
}

// Validate checks spec against the limits documented on Spec and
// normalizes its payload (compact JSON; empty for null). It fails with
// ErrInvalid, or ErrUnknownTarget for a target that is not configured.
func (c *Client) Validate(spec *Spec) error { return c.cfg.validate(spec) }

func (cfg *config) validate(spec *Spec) error {
	switch {
	case spec.RunAtMS < 0 || spec.RunAtMS > MaxTime:
		return fmt.Errorf("%w: run_at_ms %d out of range [0, %d]", ErrInvalid, spec.RunAtMS, int64(MaxTime))
	case spec.RepeatMS != nil && (*spec.RepeatMS < MinRepeat || *spec.RepeatMS > MaxTime):
		return fmt.Errorf("%w: repeat_ms %d out of range [%d, %d]", ErrInvalid, *spec.RepeatMS, MinRepeat, int64(MaxTime))
	}
	if p := bytes.TrimSpace(spec.Payload); len(p) == 0 || string(p) == "null" {
		spec.Payload = nil
	} else {
		var buf bytes.Buffer
		if err := json.Compact(&buf, p); err != nil {
			return fmt.Errorf("%w: payload is not valid JSON: %v", ErrInvalid, err)
		}
		if buf.Len() > MaxPayload {
			return fmt.Errorf("%w: payload is %d bytes, over %d", ErrInvalid, buf.Len(), MaxPayload)
		}
		spec.Payload = buf.Bytes()
	}
	if _, ok := cfg.targets[spec.Target]; !ok {
		return fmt.Errorf("%w: %q", ErrUnknownTarget, spec.Target)
	}
	return nil
}

// checkKeys checks a scheduler name and event ID: stored as text and sent
// in JSON (where invalid UTF-8 would silently become U+FFFD and name
// another event), each must be non-empty valid UTF-8.
func checkKeys(name, id string) error {
	for _, s := range []string{name, id} {
		if s == "" || !utf8.ValidString(s) {
			return fmt.Errorf("%w: scheduler names and event ids must be non-empty UTF-8", ErrInvalid)
		}
	}
	return nil
}

// Put creates the event id of scheduler name, or replaces it (attempts,
// state and history start afresh), and returns it. It fails as Validate
// does, or with ErrInvalid for an empty or non-UTF-8 name or id.
func (c *Client) Put(ctx context.Context, name, id string, spec Spec) (Event, error) {
	if err := checkKeys(name, id); err != nil {
		return Event{}, err
	}
	ev, err := durable.Call[Event](ctx, c.ns.GetByName(name), "Put", putArgs{Name: name, ID: id, Spec: spec})
	return ev, wrap(name, err)
}

// Get returns the event id of scheduler name, or ErrNotFound.
func (c *Client) Get(ctx context.Context, name, id string) (Event, error) {
	if err := checkKeys(name, id); err != nil {
		return Event{}, err
	}
	ev, err := durable.Call[Event](ctx, c.ns.GetByName(name), "Get", id)
	return ev, wrap(name, err)
}

// Delete deletes the event id of scheduler name, or fails with ErrNotFound.
func (c *Client) Delete(ctx context.Context, name, id string) error {
	if err := checkKeys(name, id); err != nil {
		return err
	}
	_, err := durable.Call[struct{}](ctx, c.ns.GetByName(name), "Delete", id)
	return wrap(name, err)
}

// List returns up to limit (1..MaxListLimit; 0 for DefaultListLimit)
// events of scheduler name ordered by run_at_ms, then id (bytewise),
// starting after cursor (a Page.NextCursor of the same scheduler; "" to
// start at the beginning). A cursor this scheduler did not make fails with
// ErrBadCursor.
func (c *Client) List(ctx context.Context, name string, limit int, cursor string) (Page, error) {
	if limit == 0 {
		limit = DefaultListLimit
	}
	if limit < 1 || limit > MaxListLimit {
		return Page{}, fmt.Errorf("%w: limit %d out of range [1, %d]", ErrInvalid, limit, MaxListLimit)
	}
	p, err := durable.Call[Page](ctx, c.ns.GetByName(name), "List", listArgs{Limit: limit, Cursor: cursor})
	return p, wrap(name, err)
}

// wrap names the scheduler in errors.
func wrap(name string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("scheduler %q: %w", name, err)
}
