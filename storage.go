package durable

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/durableobjects/durable/internal/sqlstore"
)

// Storage is an object's private database: a key-value API and SQL over the
// same SQLite file. Use it only from the object's handlers (and constructor):
// every call joins the running event's transaction, reads see the event's
// own writes, and the writes commit when the handler returns.
//
// Nothing is written to disk for an object until its first write; reads of
// an object that never wrote find nothing.
type Storage struct {
	o *object
}

func (s *Storage) st() *sqlstore.Store { return s.o.store }

// Entry is a key and its value.
type Entry struct {
	Key   string
	Value []byte
}

// ListOptions select the keys List returns. Keys sort by their UTF-8 bytes.
type ListOptions struct {
	Prefix     string // only keys starting with Prefix
	Start      string // first key, inclusive
	StartAfter string // first key, exclusive; not together with Start
	End        string // stop before this key; "" for no end
	Reverse    bool   // descending order; the range means the same
	Limit      int    // at most this many entries; 0 for all
}

// Get returns the value stored under key and whether there is one.
func (s *Storage) Get(key string) ([]byte, bool, error) { return s.st().Get(key) }

// GetMany returns the values of those keys (at most MaxBatchKeys) that exist.
func (s *Storage) GetMany(keys []string) (map[string][]byte, error) {
	return s.st().GetMany(keys)
}

// Put stores value under key. Keys are at most MaxKeySize bytes, values at
// most MaxValueSize.
func (s *Storage) Put(key string, value []byte) error { return s.st().Put(key, value) }

// PutMany stores up to MaxBatchKeys entries, all or none.
func (s *Storage) PutMany(entries map[string][]byte) error {
	es := make([]sqlstore.Entry, 0, len(entries))
	for k, v := range entries {
		es = append(es, sqlstore.Entry{Key: k, Value: v})
	}
	return s.st().PutMany(es)
}

// Delete removes key and reports whether it existed.
func (s *Storage) Delete(key string) (bool, error) { return s.st().Delete(key) }

// DeleteMany removes up to MaxBatchKeys keys and returns how many existed.
func (s *Storage) DeleteMany(keys []string) (int, error) { return s.st().DeleteMany(keys) }

// List returns the entries opts selects, in key order.
func (s *Storage) List(opts ListOptions) ([]Entry, error) {
	es, err := s.st().List(sqlstore.ListOptions(opts))
	if err != nil {
		return nil, err
	}
	out := make([]Entry, len(es))
	for i, e := range es {
		out[i] = Entry(e)
	}
	return out, nil
}

// DeleteAll deletes every key, every SQL table, view, index and trigger,
// and the alarm, atomically with the rest of the event. The class's schema
// (Namespace.SetSchema) is then made again, empty: the object is left as
// a new object of its class starts.
func (s *Storage) DeleteAll() error { return s.st().DeleteAll() }

// Transaction runs fn in a nested transaction: if fn returns an error or
// panics, fn's writes are undone and the rest of the event's are kept.
func (s *Storage) Transaction(fn func() error) error { return s.st().Transaction(fn) }

// DatabaseSize returns the size of the object's database in bytes, free
// pages included (the file does not shrink when rows are deleted). An
// object that has not written yet has no file, and reports the size of
// its class's empty database (12 KiB without a schema), as Cloudflare does.
func (s *Storage) DatabaseSize() (int64, error) { return s.st().Size() }

// Exec runs SQL on the object's database and returns a cursor over the rows
// of its last statement; args bind to that statement's parameters. Several
// statements may be separated by ';'. An authorizer refuses, with
// ErrSQLNotAllowed, the internal tables (names starting with "_durable_"),
// ATTACH, PRAGMAs outside a small allowlist (Cloudflare's), TEMP tables,
// views and triggers (they would vanish with the connection), VACUUM, and
// BEGIN, COMMIT, ROLLBACK and SAVEPOINT (use Transaction). Besides SQLite's core functions, JSON
// and math, the FTS5 full-text search and R*Tree (with geopoly) virtual
// tables are available, as on Cloudflare; their shadow tables (ft_data and
// the like) are read-only to SQL. The first row is fetched before
// Exec returns, so writes happen even if the cursor is never read. Cursors
// close when the event's turn ends.
func (s *Storage) Exec(query string, args ...any) (*Cursor, error) {
	c, err := s.st().Exec(query, args...)
	if err != nil {
		return nil, err
	}
	return &Cursor{c: c}, nil
}

// Cursor iterates over the rows of a statement.
type Cursor struct {
	c *sqlstore.Cursor
}

// Next advances to the next row and reports whether there is one.
func (c *Cursor) Next() bool { return c.c.Next() }

// Scan copies the current row's columns into dest: pointers to int, int32,
// int64, float64, bool, string, []byte or any.
func (c *Cursor) Scan(dest ...any) error { return c.c.Scan(dest...) }

// Values returns the current row: int64, float64, string, []byte or nil each.
func (c *Cursor) Values() []any { return c.c.Values() }

// Columns returns the result's column names, in order; names may repeat.
func (c *Cursor) Columns() []string { return c.c.Columns() }

// All returns every remaining row and closes the cursor.
func (c *Cursor) All() ([][]any, error) { return c.c.All() }

// One scans the only remaining row into dest; it fails with ErrNoRows or
// ErrManyRows unless exactly one row remains.
func (c *Cursor) One(dest ...any) error { return c.c.One(dest...) }

// Err returns the error that stopped Next, if any.
func (c *Cursor) Err() error { return c.c.Err() }

// Close releases the cursor and returns the iteration's error.
func (c *Cursor) Close() error { return c.c.Close() }

// RowsRead estimates the rows the statement read: the rows it stepped
// through in full table scans, or the rows it returned if that is more.
// Rows found through an index and not returned (an UPDATE or DELETE by
// key) are not counted: Cloudflare counts every row with a patched
// SQLite, which this runtime does not have.
func (c *Cursor) RowsRead() int64 { return c.c.RowsRead() }

// RowsWritten returns the rows the statement inserted, updated or deleted,
// including through triggers. Unlike Cloudflare's count, index entries are
// not counted as rows of their own.
func (c *Cursor) RowsWritten() int64 { return c.c.RowsWritten() }

// Get decodes the JSON value stored under key into a T.
func Get[T any](s *Storage, key string) (T, bool, error) {
	var v T
	b, ok, err := s.Get(key)
	if err != nil || !ok {
		return v, ok, err
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return v, false, fmt.Errorf("durable: decode %q: %w", key, err)
	}
	return v, true, nil
}

// Put stores v, JSON-encoded, under key.
func Put[T any](s *Storage, key string, v T) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("durable: encode %q: %w", key, err)
	}
	return s.Put(key, b)
}

// Internal metadata keys.
const (
	metaAlarm      = "alarm"       // ms since the epoch
	metaAlarmRetry = "alarm_retry" // failed runs of the current alarm
	metaAlarmGen   = "alarm_gen"   // random, new with every SetAlarm
)

// SetAlarm sets the object's one alarm to t, replacing any other (and any
// pending retry). A time in the past fires at once. The alarm is stored
// with the event's writes, in whole milliseconds (t rounded up, so it never
// runs early; GetAlarm returns the rounded time); the object's Alarm method
// runs at or after t, at least once, even if the object was evicted or the
// process restarted.
func (s *Storage) SetAlarm(t time.Time) error {
	ms := t.UnixMilli()
	if t.After(time.UnixMilli(ms)) {
		ms++ // a fraction of a millisecond past ms
	}
	if ms <= 0 {
		return ErrInvalidAlarm
	}
	o := s.o
	if o.inst != nil {
		if _, ok := o.inst.(Alarmer); !ok {
			return fmt.Errorf("%w: %T has no Alarm method", ErrNoHandler, o.inst)
		}
	}
	if err := o.store.SetMetaInt(metaAlarm, ms); err != nil {
		return err
	}
	if err := o.store.SetMetaInt(metaAlarmGen, rand.Int64()); err != nil {
		return err
	}
	if err := o.store.DeleteMeta(metaAlarmRetry); err != nil {
		return err
	}
	// Index first: if the commit is lost, an early index entry only costs a
	// wake-up that finds no alarm.
	return o.indexAlarm(ms)
}

// GetAlarm returns the time of the object's alarm, if one is set. Inside
// the Alarm handler the running alarm reads as deleted.
func (s *Storage) GetAlarm() (time.Time, bool, error) {
	ms, ok, err := s.st().MetaInt(metaAlarm)
	if err != nil || !ok {
		return time.Time{}, false, err
	}
	if a := s.o.alarm; a != nil && a.at == ms {
		if gen, _, err := s.st().MetaInt(metaAlarmGen); err != nil || gen == a.gen {
			return time.Time{}, false, err // the running alarm reads as deleted
		}
	}
	return time.UnixMilli(ms), true, nil
}

// DeleteAlarm deletes the object's alarm, if any.
func (s *Storage) DeleteAlarm() error {
	return s.st().DeleteMeta(metaAlarm, metaAlarmRetry, metaAlarmGen)
}
