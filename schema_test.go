package durable_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/durableobjects/durable"
)

// sqlObject runs SQL for the schema tests.
type sqlObject struct{ st *durable.State }

// Count reads the number of rows of notes.
func (o *sqlObject) Count(ctx context.Context) (int64, error) {
	var n int64
	c, err := o.st.Storage().Exec("SELECT count(*) FROM notes")
	if err != nil {
		return 0, err
	}
	return n, c.One(&n)
}

// Add inserts a note.
func (o *sqlObject) Add(ctx context.Context, text string) error {
	_, err := o.st.Storage().Exec("INSERT INTO notes (text) VALUES (?)", text)
	return err
}

// Reset deletes all of the object's data.
func (o *sqlObject) Reset(ctx context.Context) error { return o.st.Storage().DeleteAll() }

// Search counts the notes that match an FTS5 query.
func (o *sqlObject) Search(ctx context.Context, q string) (int64, error) {
	var n int64
	c, err := o.st.Storage().Exec("SELECT count(*) FROM notes WHERE notes MATCH ?", q)
	if err != nil {
		return 0, err
	}
	return n, c.One(&n)
}

const notesSchema = `CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL);
CREATE INDEX notes_text ON notes (text);`

func openWithSchema(t *testing.T, dir, schema string) (*durable.Runtime, *durable.Namespace, error) {
	t.Helper()
	rt := durable.NewRuntime(dir)
	ns, err := rt.Register("notes", func(st *durable.State) any { return &sqlObject{st: st} })
	if err != nil {
		t.Fatal(err)
	}
	if err := ns.SetSchema(schema); err != nil {
		t.Fatal(err)
	}
	if err := rt.Open(); err != nil {
		return nil, nil, err
	}
	t.Cleanup(func() { rt.Close(context.Background()) })
	return rt, ns, nil
}

// A class's objects are born with its schema: a read on an object with no
// file yet finds the (empty) table, and the first write needs no DDL.
func TestClassSchema(t *testing.T) {
	dir := t.TempDir()
	_, ns, err := openWithSchema(t, dir, notesSchema)
	if err != nil {
		t.Fatal(err)
	}
	stub := ns.Get(ns.IDFromName("a"))
	if n := call[int64](t, stub, "Count", nil); n != 0 {
		t.Fatalf("Count on a new object = %d", n)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "notes", "*", "*.sqlite"))
	if len(files) != 0 {
		t.Fatalf("a read made files: %v", files)
	}
	call[struct{}](t, stub, "Add", "hello")
	if n := call[int64](t, stub, "Count", nil); n != 1 {
		t.Fatalf("Count after Add = %d, want 1", n)
	}
}

// SetSchema after Open is refused; a schema that fails, or that uses the
// reserved prefix, fails Open with an error naming the class.
func TestClassSchemaErrors(t *testing.T) {
	_, ns, err := openWithSchema(t, t.TempDir(), notesSchema)
	if err != nil {
		t.Fatal(err)
	}
	if err := ns.SetSchema("CREATE TABLE late (x)"); err == nil {
		t.Fatal("SetSchema after Open succeeded")
	}
	for _, bad := range []string{
		"CREATE TABLE _durable_mine (x)",
		"CREATE TABLE notes (",
		"CREATE TABLE _durable_kv (x)",
	} {
		dir := t.TempDir()
		_, _, err := openWithSchema(t, dir, bad)
		if err == nil || !strings.Contains(err.Error(), `"notes"`) {
			t.Fatalf("schema %q: Open error %v, want one naming the class", bad, err)
		}
		// The failed Open released the directory: a good schema opens it.
		if _, _, err := openWithSchema(t, dir, notesSchema); err != nil {
			t.Fatalf("Open after a failed Open: %v", err)
		}
	}
}

// A class schema may make its table an FTS5 index: a new object reads it
// before it has a file, writes to it, and finds what it wrote after a
// restart.
func TestClassSchemaWithFullTextSearch(t *testing.T) {
	dir := t.TempDir()
	const schema = "CREATE VIRTUAL TABLE notes USING fts5(text)"
	rt, ns, err := openWithSchema(t, dir, schema)
	if err != nil {
		t.Fatal(err)
	}
	stub := ns.Get(ns.IDFromName("a"))
	if n := call[int64](t, stub, "Search", "durable"); n != 0 {
		t.Fatalf("Search on a new object = %d", n)
	}
	call[struct{}](t, stub, "Add", "durable objects in Go")
	call[struct{}](t, stub, "Add", "a note about something else")
	if err := rt.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, ns, err = openWithSchema(t, dir, schema)
	if err != nil {
		t.Fatal(err)
	}
	stub = ns.Get(ns.IDFromName("a"))
	if n := call[int64](t, stub, "Search", "durable OR objects"); n != 1 {
		t.Fatalf("Search after a restart = %d, want 1", n)
	}
	if n := call[int64](t, stub, "Count", nil); n != 2 {
		t.Fatalf("Count after a restart = %d, want 2", n)
	}
}

// DeleteAll leaves an object of a class with a schema as a new one: its
// tables are there again, empty.
func TestDeleteAllKeepsTheClassSchema(t *testing.T) {
	_, ns, err := openWithSchema(t, t.TempDir(), notesSchema)
	if err != nil {
		t.Fatal(err)
	}
	stub := ns.Get(ns.IDFromName("a"))
	call[struct{}](t, stub, "Add", "hello")
	call[struct{}](t, stub, "Reset", nil)
	if n := call[int64](t, stub, "Count", nil); n != 0 {
		t.Fatalf("Count after DeleteAll = %d, want 0", n)
	}
	call[struct{}](t, stub, "Add", "again")
	if n := call[int64](t, stub, "Count", nil); n != 1 {
		t.Fatalf("Count after DeleteAll and Add = %d, want 1", n)
	}
}

// A class schema follows the rules of user SQL: one that controls
// transactions (which DeleteAll, running the schema again inside an
// event's transaction, could not) or sets a PRAGMA fails Open.
func TestClassSchemaFollowsUserSQLRules(t *testing.T) {
	for _, schema := range []string{
		"BEGIN; CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL); COMMIT;",
		"CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL); PRAGMA journal_mode = DELETE",
		"CREATE TEMP TABLE notes (text TEXT)",
	} {
		_, _, err := openWithSchema(t, t.TempDir(), schema)
		if !errors.Is(err, durable.ErrSQLNotAllowed) || !strings.Contains(err.Error(), `class "notes"`) {
			t.Errorf("Open with schema %q: %v, want ErrSQLNotAllowed naming the class", schema, err)
		}
	}
}
