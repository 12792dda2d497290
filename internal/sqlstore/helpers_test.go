package sqlstore_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/durableobjects/durable/internal/sqlstore"
)

// testStore drives one object's Store the way the executor does: every
// event is a turn inside a batch, committed at the end.
type testStore struct {
	t    *testing.T
	cfg  *sqlstore.Config
	path string
	s    *sqlstore.Store
}

// newTestStore returns a store for an object whose database does not exist
// yet, in a fan-out directory that does not exist yet either.
func newTestStore(t *testing.T) *testStore {
	t.Helper()
	dir := t.TempDir()
	tmpl, err := sqlstore.NewTemplate(dir, "")
	if err != nil {
		t.Fatalf("NewTemplate: %v", err)
	}
	ts := &testStore{
		t:    t,
		cfg:  &sqlstore.Config{Template: tmpl, Dirs: &sqlstore.DirCache{}},
		path: filepath.Join(dir, "ns", "ab", "object.sqlite"),
	}
	ts.s = sqlstore.New(ts.cfg, ts.path)
	t.Cleanup(func() {
		if err := ts.s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return ts
}

// event runs fn as one event, keeps its writes and commits them.
func (ts *testStore) event(fn func(s *sqlstore.Store)) {
	ts.t.Helper()
	ts.s.BeginTurn()
	fn(ts.s)
	if err := ts.s.EndTurn(true); err != nil {
		ts.t.Fatalf("EndTurn: %v", err)
	}
	if _, err := ts.s.CommitBatch(); err != nil {
		ts.t.Fatalf("CommitBatch: %v", err)
	}
	ts.s.Checkpoint() // as the executor does once the results are on their way
}

// failedEvent runs fn as an event whose turn is undone (a panicking
// handler), then commits the batch.
func (ts *testStore) failedEvent(fn func(s *sqlstore.Store)) {
	ts.t.Helper()
	ts.s.BeginTurn()
	fn(ts.s)
	if err := ts.s.EndTurn(false); err != nil {
		ts.t.Fatalf("EndTurn(false): %v", err)
	}
	if _, err := ts.s.CommitBatch(); err != nil {
		ts.t.Fatalf("CommitBatch: %v", err)
	}
	ts.s.Checkpoint() // as the executor does once the results are on their way
}

// reopen closes the database and opens the object afresh, so what is read
// next is what was committed to the file.
func (ts *testStore) reopen() {
	ts.t.Helper()
	if err := ts.s.Close(); err != nil {
		ts.t.Fatalf("Close: %v", err)
	}
	ts.s = sqlstore.New(ts.cfg, ts.path)
}

// fileExists reports whether the object's database file is on disk.
func (ts *testStore) fileExists() bool {
	ts.t.Helper()
	_, err := os.Stat(ts.path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		ts.t.Fatal(err)
	}
	return err == nil
}

func mustPut(t *testing.T, s *sqlstore.Store, key string, value []byte) {
	t.Helper()
	if err := s.Put(key, value); err != nil {
		t.Fatalf("Put(%.20q): %v", key, err)
	}
}

// getString returns the value of key, or "<missing>".
func getString(t *testing.T, s *sqlstore.Store, key string) string {
	t.Helper()
	v, ok, err := s.Get(key)
	if err != nil {
		t.Fatalf("Get(%.20q): %v", key, err)
	}
	if !ok {
		if v != nil {
			t.Errorf("Get(%.20q) of a missing key returned value %q", key, v)
		}
		return "<missing>"
	}
	return string(v)
}

// listKeys returns the keys List returns for opts.
func listKeys(t *testing.T, s *sqlstore.Store, opts sqlstore.ListOptions) []string {
	t.Helper()
	es, err := s.List(opts)
	if err != nil {
		t.Fatalf("List(%#v): %v", opts, err)
	}
	keys := make([]string, 0, len(es))
	for _, e := range es {
		keys = append(keys, e.Key)
	}
	return keys
}

// mustExec runs query and returns all its rows.
func mustExec(t *testing.T, s *sqlstore.Store, query string, args ...any) [][]any {
	t.Helper()
	cur, err := s.Exec(query, args...)
	if err != nil {
		t.Fatalf("Exec(%.60q): %v", query, err)
	}
	rows, err := cur.All()
	if err != nil {
		t.Fatalf("Exec(%.60q).All: %v", query, err)
	}
	return rows
}

// queryInt runs a query returning one integer.
func queryInt(t *testing.T, s *sqlstore.Store, query string, args ...any) int64 {
	t.Helper()
	cur, err := s.Exec(query, args...)
	if err != nil {
		t.Fatalf("Exec(%.60q): %v", query, err)
	}
	var n int64
	if err := cur.One(&n); err != nil {
		t.Fatalf("Exec(%.60q).One: %v", query, err)
	}
	return n
}

// userSchema returns the names of the non-internal schema objects.
func userSchema(t *testing.T, s *sqlstore.Store) []string {
	t.Helper()
	rows := mustExec(t, s, `SELECT type || ' ' || name FROM sqlite_schema
		WHERE name NOT LIKE '\_durable\_%' ESCAPE '\' AND name NOT LIKE 'sqlite\_%' ESCAPE '\' ORDER BY 1`)
	var out []string
	for _, r := range rows {
		out = append(out, r[0].(string))
	}
	return out
}
