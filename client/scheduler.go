package client

import (
	"context"
	"encoding/json"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Event states.
const (
	StateScheduled = "scheduled"
	StateFailed    = "failed" // every delivery attempt of its run_at failed
)

// EventSpec is what PutEvent schedules.
type EventSpec struct {
	// RunAt is when to deliver, sent in milliseconds since the epoch
	// (truncated); required.
	RunAt time.Time
	// Repeat, when not 0, makes the event repeat every Repeat (at least
	// 1 s), sent in whole milliseconds (rounded up).
	Repeat time.Duration
	// Payload is any JSON value of at most 64 KiB once encoded with
	// encoding/json (a json.RawMessage is sent as is); nil sends none.
	Payload any
	// Target is the name of a webhook configured on the server; required.
	Target string
}

// Event is a scheduled event.
type Event struct {
	ID      string
	RunAt   time.Time
	Repeat  time.Duration // 0 for a one-shot event
	Payload json.RawMessage
	Target  string
	State   string // StateScheduled or StateFailed
	// Attempts counts the failed deliveries of the current RunAt.
	Attempts int
	// LastFiredAt is when the last delivery attempt was made; zero before
	// the first.
	LastFiredAt time.Time
	// LastError describes the last failed delivery; nil before the first.
	LastError *string
}

// EventPage is one page of ListEvents.
type EventPage struct {
	Events []Event
	// NextCursor continues the listing after this page; "" when no event
	// follows it.
	NextCursor string
}

// ListOptions page through ListEvents.
type ListOptions struct {
	// Limit is the page size, 1..1000; 0 sends none (the server's
	// default, 100).
	Limit int
	// Cursor is a NextCursor of an earlier page; "" starts at the first
	// event.
	Cursor string
}

type eventJSON struct {
	ID            string          `json:"id"`
	RunAtMS       int64           `json:"run_at_ms"`
	RepeatMS      *int64          `json:"repeat_ms"`
	Payload       json.RawMessage `json:"payload"`
	Target        string          `json:"target"`
	State         string          `json:"state"`
	Attempts      int             `json:"attempts"`
	LastFiredAtMS *int64          `json:"last_fired_at_ms"`
	LastError     *string         `json:"last_error"`
}

func (e *eventJSON) event() Event {
	ev := Event{ID: e.ID, RunAt: fromMS(e.RunAtMS), Payload: e.Payload, Target: e.Target,
		State: e.State, Attempts: e.Attempts, LastError: e.LastError}
	if e.RepeatMS != nil {
		ev.Repeat = time.Duration(*e.RepeatMS) * time.Millisecond
	}
	if e.LastFiredAtMS != nil {
		ev.LastFiredAt = fromMS(*e.LastFiredAtMS)
	}
	return ev
}

func eventPath(scheduler, id string) (string, error) {
	n, err := seg("scheduler name", scheduler)
	if err != nil {
		return "", err
	}
	i, err := seg("event id", id)
	if err != nil {
		return "", err
	}
	return "/v1/schedulers/" + n + "/events/" + i, nil
}

// PutEvent schedules the event id of scheduler, replacing one with the
// same id, and returns it: PUT /v1/schedulers/{name}/events/{id}. An
// unknown target is ErrInvalidArgument.
//
// Retries: also after ambiguous connection errors. A PUT replaces the
// whole event, so sending the same one twice leaves what sending it once
// does. One case differs: if the lost attempt's event came due and was
// delivered (and, one-shot, deleted) before the retry arrived, the retry
// schedules it again and it is delivered a second time, with the same
// Idempotency-Key header ({name}:{id}:{run_at_ms}); delivery is
// at-least-once anyway, so receivers must deduplicate on that key.
func (c *Client) PutEvent(ctx context.Context, scheduler, id string, spec EventSpec) (*Event, error) {
	p, err := eventPath(scheduler, id)
	if err != nil {
		return nil, err
	}
	if spec.RunAt.IsZero() {
		return nil, invalid("RunAt is required")
	}
	body := map[string]any{"run_at_ms": spec.RunAt.UnixMilli(), "target": spec.Target}
	if spec.Repeat != 0 {
		body["repeat_ms"] = ms(spec.Repeat)
	}
	if spec.Payload != nil {
		body["payload"] = spec.Payload
	}
	var out eventJSON
	r := &request{method: http.MethodPut, path: p, safety: idempotent, body: body}
	if err := c.call(ctx, r, http.StatusOK, &out); err != nil {
		return nil, err
	}
	ev := out.event()
	return &ev, nil
}

// GetEvent returns the event id of scheduler:
// GET /v1/schedulers/{name}/events/{id}. An unknown event (or a one-shot
// one already delivered) is ErrNotFound. Retried after any retryable
// failure (a read).
func (c *Client) GetEvent(ctx context.Context, scheduler, id string) (*Event, error) {
	p, err := eventPath(scheduler, id)
	if err != nil {
		return nil, err
	}
	var out eventJSON
	r := &request{method: http.MethodGet, path: p, safety: idempotent}
	if err := c.call(ctx, r, http.StatusOK, &out); err != nil {
		return nil, err
	}
	ev := out.event()
	return &ev, nil
}

// DeleteEvent deletes the event id of scheduler:
// DELETE /v1/schedulers/{name}/events/{id}. An unknown event is
// ErrNotFound.
//
// Retries: also after ambiguous connection errors (deleting is
// idempotent). If the lost attempt deleted it, the retry answers
// ErrNotFound marked with ErrUnknownOutcome.
func (c *Client) DeleteEvent(ctx context.Context, scheduler, id string) error {
	p, err := eventPath(scheduler, id)
	if err != nil {
		return err
	}
	r := &request{method: http.MethodDelete, path: p, safety: idempotent}
	return c.call(ctx, r, http.StatusNoContent, nil)
}

// ListEvents returns one page of scheduler's events, ordered by run time
// then id: GET /v1/schedulers/{name}/events. A cursor the server did not
// make is ErrInvalidArgument. Retried after any retryable failure (a
// read). Events iterates over every page.
func (c *Client) ListEvents(ctx context.Context, scheduler string, opts ListOptions) (*EventPage, error) {
	n, err := seg("scheduler name", scheduler)
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	if opts.Limit != 0 {
		q.Set("limit", strconv.Itoa(opts.Limit))
	}
	if opts.Cursor != "" {
		q.Set("cursor", opts.Cursor)
	}
	var out struct {
		Events     []eventJSON `json:"events"`
		NextCursor *string     `json:"next_cursor"`
	}
	r := &request{method: http.MethodGet, path: "/v1/schedulers/" + n + "/events", query: q, safety: idempotent}
	if err := c.call(ctx, r, http.StatusOK, &out); err != nil {
		return nil, err
	}
	page := &EventPage{Events: make([]Event, len(out.Events))}
	for i := range out.Events {
		page.Events[i] = out.Events[i].event()
	}
	if out.NextCursor != nil {
		page.NextCursor = *out.NextCursor
	}
	return page, nil
}

// Events iterates over every event of scheduler, fetching pages of
// pageSize (0: the server's default) as the loop goes on:
//
//	for ev, err := range c.Events(ctx, "billing", 0) {
//		if err != nil {
//			return err
//		}
//		...
//	}
//
// An error ends the iteration after it is yielded. Events added or
// removed while the loop runs may or may not be seen, as with any
// cursor.
func (c *Client) Events(ctx context.Context, scheduler string, pageSize int) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		cursor := ""
		for {
			page, err := c.ListEvents(ctx, scheduler, ListOptions{Limit: pageSize, Cursor: cursor})
			if err != nil {
				yield(Event{}, err)
				return
			}
			for _, ev := range page.Events {
				if !yield(ev, nil) {
					return
				}
			}
			if page.NextCursor == "" {
				return
			}
			cursor = page.NextCursor
		}
	}
}
