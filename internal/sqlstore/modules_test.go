package sqlstore_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/durableobjects/durable/internal/sqlstore"
)

// FTS5 works from user SQL like any table: created in an event, searched
// with MATCH and its auxiliary functions, kept across a restart (a new
// connection, which registers the module when a statement first needs it),
// its writes undone with a failed event's, and dropped by DeleteAll.
func TestFTS5(t *testing.T) {
	ts := newTestStore(t)
	ts.event(func(s *sqlstore.Store) {
		mustExec(t, s, "CREATE VIRTUAL TABLE notes USING fts5(title, body)")
		mustExec(t, s, "INSERT INTO notes VALUES (?, ?), (?, ?)",
			"groceries", "buy apples and pears", "work", "review the durable objects design")
	})
	search := func(s *sqlstore.Store, q string) string {
		rows := mustExec(t, s, "SELECT title, highlight(notes, 1, '[', ']') FROM notes WHERE notes MATCH ? ORDER BY bm25(notes)", q)
		return fmt.Sprint(rows)
	}
	for _, restart := range []bool{false, true} {
		if restart {
			ts.reopen()
		}
		ts.event(func(s *sqlstore.Store) {
			if got, want := search(s, "apples"), "[[groceries buy [apples] and pears]]"; got != want {
				t.Errorf("restart %v: MATCH apples = %s, want %s", restart, got, want)
			}
			rows := mustExec(t, s, "SELECT snippet(notes, 1, '<', '>', '…', 3) FROM notes WHERE notes MATCH 'design'")
			if got, want := fmt.Sprint(rows), "[[…durable objects <design>]]"; got != want {
				t.Errorf("restart %v: snippet = %s, want %s", restart, got, want)
			}
		})
	}

	ts.failedEvent(func(s *sqlstore.Store) {
		mustExec(t, s, "INSERT INTO notes VALUES ('lost', 'apples again')")
	})
	ts.reopen()
	ts.event(func(s *sqlstore.Store) {
		if got, want := search(s, "apples"), "[[groceries buy [apples] and pears]]"; got != want {
			t.Errorf("after a failed event: MATCH apples = %s, want %s", got, want)
		}
	})

	ts.reopen() // DeleteAll on a connection that has not used the module yet
	ts.event(func(s *sqlstore.Store) {
		if err := s.DeleteAll(); err != nil {
			t.Fatalf("DeleteAll: %v", err)
		}
	})
	ts.event(func(s *sqlstore.Store) {
		if rows := mustExec(t, s, "SELECT name FROM sqlite_schema WHERE name LIKE 'notes%'"); len(rows) != 0 {
			t.Errorf("after DeleteAll: %v", rows)
		}
	})
}

// R*Tree (and geopoly, which comes with it) work from user SQL too.
func TestRTree(t *testing.T) {
	ts := newTestStore(t)
	ts.event(func(s *sqlstore.Store) {
		mustExec(t, s, "CREATE VIRTUAL TABLE boxes USING rtree(id, minX, maxX, minY, maxY)")
		mustExec(t, s, "INSERT INTO boxes VALUES (1, 0, 10, 0, 10), (2, 20, 30, 20, 30)")
	})
	ts.reopen()
	ts.event(func(s *sqlstore.Store) {
		rows := mustExec(t, s, "SELECT id FROM boxes WHERE minX <= 5 AND maxX >= 5 AND minY <= 5 AND maxY >= 5")
		if got := fmt.Sprint(rows); got != "[[1]]" {
			t.Errorf("boxes containing (5, 5) = %s, want [[1]]", got)
		}
		rows = mustExec(t, s, "SELECT rtreecheck('boxes')")
		if got := fmt.Sprint(rows); got != "[[ok]]" {
			t.Errorf("rtreecheck = %s", got)
		}
		mustExec(t, s, "CREATE VIRTUAL TABLE shapes USING geopoly()")
	})
}

// The reserved prefix is refused for a virtual table as for any table, and
// a module that is not one of the extensions stays missing.
func TestModulesRefusals(t *testing.T) {
	ts := newTestStore(t)
	ts.event(func(s *sqlstore.Store) {
		_, err := s.Exec("CREATE VIRTUAL TABLE _durable_search USING fts5(x)")
		if !strings.Contains(fmt.Sprint(err), "internal table") {
			t.Errorf("a reserved virtual table: %v", err)
		}
		if _, err := s.Exec("CREATE VIRTUAL TABLE v USING nosuch(x)"); !strings.Contains(fmt.Sprint(err), "no such module: nosuch") {
			t.Errorf("an unknown module: %v", err)
		}
	})
}

// A class schema may create virtual tables: new objects start with them,
// and a virgin object's read-only SQL (run on a scratch copy) can use them.
func TestClassSchemaWithFTS5(t *testing.T) {
	dir := t.TempDir()
	const schema = "CREATE VIRTUAL TABLE docs USING fts5(body); INSERT INTO docs VALUES ('the template row')"
	tmpl, err := sqlstore.NewTemplate(dir, schema)
	if err != nil {
		t.Fatalf("NewTemplate: %v", err)
	}
	cfg := &sqlstore.Config{Template: tmpl, Schema: schema, Dirs: &sqlstore.DirCache{}, Scratch: &sqlstore.ScratchPool{Schema: schema}}
	t.Cleanup(func() { cfg.Scratch.Close() })
	for i, write := range []bool{false, true} {
		ts := &testStore{t: t, cfg: cfg, path: filepath.Join(dir, "ns", "ab", fmt.Sprintf("o%d.sqlite", i))}
		ts.s = sqlstore.New(cfg, ts.path)
		ts.event(func(s *sqlstore.Store) {
			if write {
				// A new object's copy of the template has its shadow
				// tables protected too, before the table is used.
				if _, err := s.Exec("DELETE FROM docs_data"); err == nil {
					t.Error("a new object wrote to a shadow table of its class schema")
				}
				mustExec(t, s, "INSERT INTO docs VALUES ('a template of mine')")
			}
			rows := mustExec(t, s, "SELECT count(*) FROM docs WHERE docs MATCH 'template'")
			if want := map[bool]string{false: "[[1]]", true: "[[2]]"}[write]; fmt.Sprint(rows) != want {
				t.Errorf("write %v: %v matches, want %s", write, rows, want)
			}
		})
		if got := ts.fileExists(); got != write {
			t.Errorf("write %v: file exists %v", write, got)
		}
		if err := ts.s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// A statement may need both extensions (a join, a trigger writing to
// both): on a connection that has neither yet it registers one, then the
// other, and runs.
func TestTwoModulesInOneStatement(t *testing.T) {
	ts := newTestStore(t)
	ts.event(func(s *sqlstore.Store) {
		mustExec(t, s, "CREATE TABLE docs (id INTEGER PRIMARY KEY, body TEXT)")
		mustExec(t, s, "CREATE VIRTUAL TABLE ft USING fts5(body)")
		mustExec(t, s, "CREATE VIRTUAL TABLE boxes USING rtree(id, minX, maxX)")
		mustExec(t, s, `CREATE TRIGGER docs_ai AFTER INSERT ON docs BEGIN
			INSERT INTO ft(rowid, body) VALUES (new.id, new.body);
			INSERT INTO boxes VALUES (new.id, 0, 1);
		END`)
	})
	ts.reopen() // a new connection: no extension registered
	ts.event(func(s *sqlstore.Store) {
		mustExec(t, s, "INSERT INTO docs (body) VALUES ('hello')")
	})
	ts.reopen()
	ts.event(func(s *sqlstore.Store) {
		rows := mustExec(t, s, "SELECT ft.body, boxes.maxX FROM ft JOIN boxes ON boxes.id = ft.rowid WHERE ft MATCH 'hello'")
		if got := fmt.Sprint(rows); got != "[[hello 1]]" {
			t.Errorf("join of FTS5 and R*Tree = %s", got)
		}
	})
}

// The shadow tables of a virtual table are read-only to user SQL (SQLite's
// defensive mode): writing to or dropping one would leave the virtual
// table unusable, and impossible to drop. DeleteAll drops it all.
func TestShadowTablesAreReadOnly(t *testing.T) {
	ts := newTestStore(t)
	refused := []string{"INSERT INTO ft_data VALUES (12345, x'00')", "DELETE FROM ft_idx", "DROP TABLE ft_config"}
	ts.event(func(s *sqlstore.Store) {
		mustExec(t, s, "CREATE VIRTUAL TABLE ft USING fts5(body)")
		mustExec(t, s, "INSERT INTO ft VALUES ('x')")
		for _, q := range refused {
			if _, err := s.Exec(q); err == nil {
				t.Errorf("%q was accepted on the connection that made the table", q)
			}
		}
	})
	ts.reopen()
	ts.event(func(s *sqlstore.Store) {
		for _, q := range refused {
			if _, err := s.Exec(q); err == nil {
				t.Errorf("%q was accepted on a new connection", q)
			}
		}
		if rows := mustExec(t, s, "SELECT count(*) FROM ft_data"); fmt.Sprint(rows) == "[[0]]" {
			t.Errorf("ft_data reads empty")
		}
		if rows := mustExec(t, s, "SELECT count(*) FROM ft WHERE ft MATCH 'x'"); fmt.Sprint(rows) != "[[1]]" {
			t.Errorf("the index after refused writes: %v", rows)
		}
		if err := s.DeleteAll(); err != nil {
			t.Fatalf("DeleteAll: %v", err)
		}
		if rows := mustExec(t, s, "SELECT name FROM sqlite_schema WHERE name LIKE 'ft%'"); len(rows) != 0 {
			t.Errorf("after DeleteAll: %v", rows)
		}
	})
}

// An FTS5 table whose external content is an internal table cannot read
// it: FTS5 prepares its own statements as the user's statement runs, and
// the authorizer sees them.
func TestFTS5CannotReadInternalTables(t *testing.T) {
	ts := newTestStore(t)
	ts.event(func(s *sqlstore.Store) {
		mustPut(t, s, "secret", []byte("v"))
		_, err := s.Exec("CREATE VIRTUAL TABLE ft USING fts5(value, content='_durable_kv', content_rowid='key')")
		if err != nil {
			return // refused at creation: as good
		}
		if _, err := s.Exec("INSERT INTO ft(ft) VALUES ('rebuild')"); !errors.Is(err, sqlstore.ErrNotAllowed) {
			t.Errorf("rebuild from _durable_kv: %v, want ErrNotAllowed", err)
		}
		if _, err := s.Exec("SELECT * FROM ft"); !errors.Is(err, sqlstore.ErrNotAllowed) {
			t.Errorf("reading _durable_kv through FTS5: %v, want ErrNotAllowed", err)
		}
	})
}
