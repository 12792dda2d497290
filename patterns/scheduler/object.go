package scheduler

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"time"

	"github.com/durableobjects/durable"
)

// schema is created by a scheduler's first write. An event's due_at_ms is
// when its next delivery attempt is due (its run_at_ms, or a retry time);
// NULL once it failed for good. gen changes with every PUT, so an outcome
// recorded after a delivery applies only to the version delivered.
const schema = `
CREATE TABLE IF NOT EXISTS events (
	id               TEXT PRIMARY KEY,
	run_at_ms        INTEGER NOT NULL,
	repeat_ms        INTEGER,
	payload          TEXT,
	target           TEXT NOT NULL,
	state            TEXT NOT NULL,
	attempts         INTEGER NOT NULL,
	due_at_ms        INTEGER,
	last_fired_at_ms INTEGER,
	last_error       TEXT,
	gen              INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS events_by_run_at ON events (run_at_ms, id);
CREATE INDEX IF NOT EXISTS events_by_due ON events (due_at_ms, id) WHERE due_at_ms IS NOT NULL;
`

// KV keys: the scheduler's name (the object cannot learn it from an alarm
// after a restart) and the key that authenticates its list cursors.
const (
	nameKey   = "name"
	cursorKey = "cursor_key"
)

const eventColumns = `id, run_at_ms, repeat_ms, payload, target, state, attempts, last_fired_at_ms, last_error`

// object is one scheduler.
type object struct {
	st  *durable.State
	cfg *config

	// Loaded at activation; set by the first write. A scheduler that was
	// never written has no file and no tables: reads find nothing.
	ready bool
	name  string
	key   []byte

	// changed is set while an alarm run waits on deliveries in flight: a
	// PUT pokes it, so an event put for now is sent without waiting for
	// them (see Alarm).
	changed chan struct{}
}

// poke tells a waiting alarm run that the events changed.
func (o *object) poke() {
	select {
	case o.changed <- struct{}{}:
	default: // nil (no run waits), or already poked
	}
}

// Messages of the RPC methods.
type putArgs struct {
	Name string `json:"name"`
	ID   string `json:"id"`
	Spec Spec   `json:"spec"`
}

type listArgs struct {
	Limit  int    `json:"limit"`
	Cursor string `json:"cursor"`
}

func (o *object) load() error {
	m, err := o.st.Storage().GetMany([]string{nameKey, cursorKey})
	if err != nil {
		return err
	}
	if name, ok := m[nameKey]; ok {
		o.ready, o.name, o.key = true, string(name), m[cursorKey]
	}
	return nil
}

// Put creates or replaces an event.
func (o *object) Put(ctx context.Context, a putArgs) (Event, error) {
	if err := o.cfg.validate(&a.Spec); err != nil {
		return Event{}, err
	}
	s := o.st.Storage()
	var key []byte
	err := s.Transaction(func() error {
		if !o.ready {
			if _, err := s.Exec(schema); err != nil {
				return err
			}
			key = make([]byte, 32)
			rand.Read(key)
			if err := s.PutMany(map[string][]byte{nameKey: []byte(a.Name), cursorKey: key}); err != nil {
				return err
			}
		}
		var payload any
		if a.Spec.Payload != nil {
			payload = string(a.Spec.Payload)
		}
		var repeat any
		if a.Spec.RepeatMS != nil {
			repeat = *a.Spec.RepeatMS
		}
		_, err := s.Exec(`INSERT OR REPLACE INTO events
			(id, run_at_ms, repeat_ms, payload, target, state, attempts, due_at_ms, last_fired_at_ms, last_error, gen)
			VALUES (?1, ?2, ?3, ?4, ?5, 'scheduled', 0, ?2, NULL, NULL, ?6)`,
			a.ID, a.Spec.RunAtMS, repeat, payload, a.Spec.Target, mrand.Int64())
		if err != nil {
			return err
		}
		return o.rearm()
	})
	if err != nil {
		return Event{}, err
	}
	o.poke()
	if !o.ready {
		o.ready, o.name, o.key = true, a.Name, key
	}
	return Event{
		ID: a.ID, RunAtMS: a.Spec.RunAtMS, RepeatMS: a.Spec.RepeatMS, Payload: a.Spec.Payload,
		Target: a.Spec.Target, State: StateScheduled,
	}, nil
}

// Get returns an event.
func (o *object) Get(ctx context.Context, id string) (Event, error) {
	if !o.ready {
		return Event{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	cur, err := o.st.Storage().Exec(`SELECT `+eventColumns+` FROM events WHERE id = ?`, id)
	if err != nil {
		return Event{}, err
	}
	defer cur.Close()
	if !cur.Next() {
		if err := cur.Err(); err != nil {
			return Event{}, err
		}
		return Event{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	return scanEvent(cur)
}

// Delete deletes an event.
func (o *object) Delete(ctx context.Context, id string) error {
	if !o.ready {
		return fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	s := o.st.Storage()
	return s.Transaction(func() error {
		cur, err := s.Exec(`DELETE FROM events WHERE id = ?`, id)
		if err != nil {
			return err
		}
		if cur.RowsWritten() == 0 {
			return fmt.Errorf("%w: %q", ErrNotFound, id)
		}
		return o.rearm()
	})
}

// List returns a page of events in (run_at_ms, id) order.
func (o *object) List(ctx context.Context, a listArgs) (Page, error) {
	if a.Limit < 1 || a.Limit > MaxListLimit {
		return Page{}, fmt.Errorf("%w: limit %d out of range [1, %d]", ErrInvalid, a.Limit, MaxListLimit)
	}
	// Start before every event: ids are never empty.
	afterRunAt, afterID := int64(math.MinInt64), ""
	if a.Cursor != "" {
		if !o.ready {
			return Page{}, ErrBadCursor
		}
		var err error
		if afterRunAt, afterID, err = parseCursor(o.key, a.Cursor); err != nil {
			return Page{}, err
		}
	}
	page := Page{Events: []Event{}}
	if !o.ready {
		return page, nil
	}
	cur, err := o.st.Storage().Exec(`SELECT `+eventColumns+` FROM events
		WHERE (run_at_ms, id) > (?, ?) ORDER BY run_at_ms, id LIMIT ?`, afterRunAt, afterID, a.Limit+1)
	if err != nil {
		return Page{}, err
	}
	defer cur.Close()
	for cur.Next() {
		if len(page.Events) == a.Limit {
			last := page.Events[a.Limit-1]
			c := makeCursor(o.key, last.RunAtMS, last.ID)
			page.NextCursor = &c
			break
		}
		ev, err := scanEvent(cur)
		if err != nil {
			return Page{}, err
		}
		page.Events = append(page.Events, ev)
	}
	return page, cur.Err()
}

// scanner is the part of a durable.Cursor scanEvent needs.
type scanner interface{ Scan(dest ...any) error }

// scanEvent reads a row of eventColumns.
func scanEvent(cur scanner) (Event, error) {
	var e Event
	var repeat, payload, fired, lastErr any
	if err := cur.Scan(&e.ID, &e.RunAtMS, &repeat, &payload, &e.Target, &e.State, &e.Attempts, &fired, &lastErr); err != nil {
		return Event{}, err
	}
	if v, ok := repeat.(int64); ok {
		e.RepeatMS = &v
	}
	if v, ok := payload.(string); ok {
		e.Payload = []byte(v)
	}
	if v, ok := fired.(int64); ok {
		e.LastFiredAtMS = &v
	}
	if v, ok := lastErr.(string); ok {
		e.LastError = &v
	}
	return e, nil
}

// rearm sets the object's alarm to the earliest due delivery, or deletes it
// when nothing is due. Every write to events ends with it.
func (o *object) rearm() error {
	s := o.st.Storage()
	cur, err := s.Exec(`SELECT due_at_ms FROM events WHERE due_at_ms IS NOT NULL ORDER BY due_at_ms LIMIT 1`)
	if err != nil {
		return err
	}
	var next int64
	err = cur.One(&next)
	if err != nil && !errors.Is(err, durable.ErrNoRows) {
		return err
	}
	at, set, gerr := s.GetAlarm()
	switch {
	case gerr != nil:
		return gerr
	case err != nil: // no rows: nothing is due
		if set {
			return s.DeleteAlarm()
		}
		return nil
	}
	want := time.UnixMilli(max(next, 1)) // the runtime refuses alarms at or before the epoch
	if set && at.Equal(want) {
		return nil
	}
	return s.SetAlarm(want)
}
