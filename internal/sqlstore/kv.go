package sqlstore

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/ncruces/go-sqlite3"
)

// Entry is one key and its value.
type Entry struct {
	Key   string
	Value []byte
}

// ListOptions select a range of keys. Keys are ordered by their UTF-8 bytes.
type ListOptions struct {
	Prefix     string // only keys with this prefix
	Start      string // first key, inclusive
	StartAfter string // first key, exclusive; not with Start
	End        string // last key, exclusive; "" means no end
	Reverse    bool   // descending order (the range means the same)
	Limit      int    // at most this many entries; 0 means all
}

func checkKey(key string) error {
	if len(key) > MaxKeySize {
		return fmt.Errorf("%w: %d bytes", ErrKeyTooLarge, len(key))
	}
	return nil
}

func checkKeys(n int) error {
	if n > MaxBatchKeys {
		return fmt.Errorf("%w: %d", ErrTooManyKeys, n)
	}
	return nil
}

// Get returns the value of key.
func (s *Store) Get(key string) (value []byte, ok bool, err error) {
	if err := checkKey(key); err != nil {
		return nil, false, err
	}
	c, err := s.reader()
	if c == nil || err != nil {
		return nil, false, err
	}
	st, err := s.prepared("SELECT value FROM _durable_kv WHERE key = ?")
	if err != nil {
		return nil, false, err
	}
	defer st.Reset()
	st.BindBlob(1, blobKey(key))
	if !st.Step() {
		return nil, false, s.afterError(st.Err())
	}
	return st.ColumnBlob(0, []byte{}), true, nil
}

// GetMany returns the values of the keys that exist.
func (s *Store) GetMany(keys []string) (map[string][]byte, error) {
	if err := checkKeys(len(keys)); err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(keys))
	for _, k := range keys {
		v, ok, err := s.Get(k)
		if err != nil {
			return nil, err
		}
		if ok {
			out[k] = v
		}
	}
	return out, nil
}

// Put stores value under key.
func (s *Store) Put(key string, value []byte) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if len(value) > MaxValueSize {
		return fmt.Errorf("%w: %d bytes", ErrValueTooLarge, len(value))
	}
	if _, err := s.writer(); err != nil {
		return err
	}
	st, err := s.prepared("INSERT INTO _durable_kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
	if err != nil {
		return err
	}
	st.BindBlob(1, blobKey(key))
	if value == nil {
		value = []byte{}
	}
	st.BindBlob(2, value)
	return s.afterError(st.Exec())
}

// PutMany stores every entry, atomically.
func (s *Store) PutMany(entries []Entry) error {
	if err := checkKeys(len(entries)); err != nil {
		return err
	}
	for _, e := range entries {
		if err := checkKey(e.Key); err != nil {
			return err
		}
		if len(e.Value) > MaxValueSize {
			return fmt.Errorf("%w: key %q: %d bytes", ErrValueTooLarge, e.Key, len(e.Value))
		}
	}
	return s.Transaction(func() error {
		for _, e := range entries {
			if err := s.Put(e.Key, e.Value); err != nil {
				return err
			}
		}
		return nil
	})
}

// Delete removes key and reports whether it existed.
func (s *Store) Delete(key string) (bool, error) {
	if err := checkKey(key); err != nil {
		return false, err
	}
	if c, err := s.reader(); c == nil || err != nil {
		return false, err // nothing stored yet: nothing to delete
	}
	if _, err := s.writer(); err != nil {
		return false, err
	}
	st, err := s.prepared("DELETE FROM _durable_kv WHERE key = ?")
	if err != nil {
		return false, err
	}
	st.BindBlob(1, blobKey(key))
	if err := st.Exec(); err != nil {
		return false, s.afterError(err)
	}
	return s.conn.Changes() > 0, nil
}

// DeleteMany removes keys and returns how many existed.
func (s *Store) DeleteMany(keys []string) (int, error) {
	if err := checkKeys(len(keys)); err != nil {
		return 0, err
	}
	for _, k := range keys {
		if err := checkKey(k); err != nil {
			return 0, err
		}
	}
	n := 0
	err := s.Transaction(func() error {
		for _, k := range keys {
			ok, err := s.Delete(k)
			if err != nil {
				return err
			}
			if ok {
				n++
			}
		}
		return nil
	})
	return n, err
}

// List returns the entries in the range opts selects, in key order.
func (s *Store) List(opts ListOptions) ([]Entry, error) {
	if opts.Start != "" && opts.StartAfter != "" {
		return nil, fmt.Errorf("%w: Start and StartAfter are exclusive", ErrInvalidList)
	}
	if opts.Limit < 0 {
		return nil, fmt.Errorf("%w: negative Limit", ErrInvalidList)
	}
	c, err := s.reader()
	if c == nil || err != nil {
		return nil, err
	}
	// Lower bound: the greater of Start/StartAfter and Prefix.
	lo, loExcl := opts.Start, false
	if opts.StartAfter != "" {
		lo, loExcl = opts.StartAfter, true
	}
	if opts.Prefix > lo {
		lo, loExcl = opts.Prefix, false
	}
	// Upper bound: the lesser of End and the first key past Prefix.
	hi, hasHi := opts.End, opts.End != ""
	if opts.Prefix != "" {
		if ph, ok := prefixEnd(opts.Prefix); ok && (!hasHi || ph < hi) {
			hi, hasHi = ph, true
		}
	}
	var q strings.Builder
	q.WriteString("SELECT key, value FROM _durable_kv WHERE key ")
	if loExcl {
		q.WriteString("> ?1")
	} else {
		q.WriteString(">= ?1")
	}
	if hasHi {
		q.WriteString(" AND key < ?2")
	}
	if opts.Reverse {
		q.WriteString(" ORDER BY key DESC")
	} else {
		q.WriteString(" ORDER BY key")
	}
	q.WriteString(" LIMIT ?3")
	st, err := s.prepared(q.String())
	if err != nil {
		return nil, err
	}
	defer st.Reset()
	st.BindBlob(1, blobKey(lo))
	if hasHi {
		st.BindBlob(2, blobKey(hi))
	}
	limit := int64(opts.Limit)
	if limit == 0 {
		limit = -1
	}
	st.BindInt64(3, limit)
	var out []Entry
	for st.Step() {
		out = append(out, Entry{Key: string(st.ColumnRawBlob(0)), Value: st.ColumnBlob(1, []byte{})})
	}
	if err := st.Err(); err != nil {
		return nil, s.afterError(err)
	}
	return out, nil
}

// DeleteAll deletes every key, every user table, view, index and trigger,
// and the alarm, atomically with the rest of the event, then runs the
// class schema (Config.Schema) again: the object is left as a new one is
// born. It is all or nothing: if a step fails, what it already deleted is
// restored.
func (s *Store) DeleteAll() error {
	if c, err := s.reader(); c == nil || err != nil {
		return err
	}
	return s.Transaction(s.deleteAll)
}

func (s *Store) deleteAll() error {
	if _, err := s.writer(); err != nil {
		return err
	}
	type object struct{ typ, name string }
	var objs []object
	st, _, err := s.conn.Prepare(`SELECT type, name FROM sqlite_schema
		WHERE name NOT LIKE 'sqlite\_%' ESCAPE '\' AND name NOT LIKE '\_durable\_%' ESCAPE '\'
		AND type IN ('table', 'view', 'trigger') ORDER BY rowid`)
	if err != nil {
		return err
	}
	for st.Step() {
		objs = append(objs, object{st.ColumnText(0), st.ColumnText(1)})
	}
	err = errors.Join(st.Err(), st.Close())
	if err != nil {
		return s.afterError(err)
	}
	// Foreign keys are enforced, and dropping a parent table before its
	// children fails its implicit DELETE. Deferred, the violations go away
	// as the children are dropped too. The setting is the connection's:
	// put it back as it was (turning it off forgets deferred violations,
	// and none are left once every table is gone).
	deferred, err := s.pragmaBool("defer_foreign_keys")
	if err != nil {
		return s.afterError(err)
	}
	if !deferred {
		if err := s.conn.Exec("PRAGMA defer_foreign_keys = ON"); err != nil {
			return s.afterError(err)
		}
		defer s.conn.Exec("PRAGMA defer_foreign_keys = OFF")
	}
	// Triggers and views first, then tables (dropping a table drops its
	// indexes), in the order they were made: a virtual table comes before
	// its shadow tables, and dropping it drops them.
	order := map[string]int{"trigger": 0, "view": 1, "table": 2}
	slices.SortStableFunc(objs, func(a, b object) int { return order[a.typ] - order[b.typ] })
	for _, o := range objs {
		if err := execModules(s.conn, "DROP "+strings.ToUpper(o.typ)+" IF EXISTS "+sqlite3.QuoteIdentifier(o.name)); err != nil {
			return s.afterError(fmt.Errorf("delete all: drop %s %s: %w", o.typ, o.name, err))
		}
	}
	if err := s.conn.Exec("DELETE FROM _durable_kv; DELETE FROM _durable_meta"); err != nil {
		return s.afterError(err)
	}
	if s.cfg.Schema != "" {
		err := execClassSchema(s.conn, s.cfg.Schema)
		if aerr := s.auth.install(s.conn); err == nil {
			err = aerr
		}
		if err != nil {
			return s.afterError(fmt.Errorf("delete all: %w", err))
		}
	}
	return nil
}

// pragmaBool reads a boolean PRAGMA of the connection.
func (s *Store) pragmaBool(name string) (bool, error) {
	st, err := s.prepared("PRAGMA " + name)
	if err != nil {
		return false, err
	}
	defer st.Reset()
	if !st.Step() {
		return false, fmt.Errorf("PRAGMA %s: no result: %w", name, st.Err())
	}
	return st.ColumnBool(0), nil
}

// afterError marks the store broken when SQLite rolled the whole transaction
// back on its own (disk full, I/O error): its earlier writes are gone, so the
// batch cannot commit.
func (s *Store) afterError(err error) error {
	if err == nil {
		return nil
	}
	if s.txOpen && s.conn != nil && s.conn.GetAutocommit() {
		s.txOpen = false
		s.fail(fmt.Errorf("transaction of %s rolled back: %w", s.path, err))
	}
	if isStorageFault(err) {
		s.fail(fmt.Errorf("storage of %s failed: %w", s.path, err))
	}
	return err
}

// isStorageFault reports whether err says the database or its disk is
// unusable (not that a statement was wrong): the store must be reopened.
func isStorageFault(err error) bool {
	// SQLite's errors come as *sqlite3.Error or, from some calls (a step
	// on a corrupt page, say), as a bare sqlite3.ExtendedErrorCode or
	// ErrorCode; As gives the primary code of each.
	var code sqlite3.ErrorCode
	if !errors.As(err, &code) {
		return false
	}
	switch code {
	case sqlite3.IOERR, sqlite3.CORRUPT, sqlite3.FULL, sqlite3.CANTOPEN, sqlite3.NOTADB, sqlite3.READONLY, sqlite3.NOMEM:
		return true
	}
	return false
}

// blobKey returns key's bytes; an empty key is an empty (not NULL) blob.
func blobKey(key string) []byte {
	if key == "" {
		return []byte{}
	}
	return []byte(key)
}

// prefixEnd returns the smallest key greater than every key with prefix p,
// or false when there is none (p is all 0xff bytes).
func prefixEnd(p string) (string, bool) {
	b := []byte(p)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1]), true
		}
	}
	return "", false
}
