package node

import (
	"testing"

	"github.com/ncruces/go-sqlite3"
)

// DoStmt's cached statements are ready for the next call whatever the
// last one did (failed, stopped mid-rows, left bindings), and Close
// finalizes them so that the connection closes.
func TestDoStmtReuse(t *testing.T) {
	db, err := Open(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	const ins = "INSERT INTO meta (key, value) VALUES (?, 1)"
	insert := func(key string) error {
		return db.DoStmt(ins, func(st *sqlite3.Stmt) error {
			st.BindText(1, key)
			return st.Exec()
		})
	}
	if err := insert("a"); err != nil {
		t.Fatal(err)
	}
	if err := insert("a"); err == nil {
		t.Fatal("duplicate key inserted")
	}
	if err := insert("b"); err != nil { // after the failed run
		t.Fatalf("statement unusable after an error: %v", err)
	}

	// Read only the first row each time: the next call starts over.
	for range 3 {
		var first string
		err := db.DoStmt("SELECT key FROM meta ORDER BY key", func(st *sqlite3.Stmt) error {
			if st.Step() {
				first = st.ColumnText(0)
			}
			return st.Err()
		})
		if err != nil {
			t.Fatal(err)
		}
		if first != "a" {
			t.Fatalf("first row %q, want a: the statement was not reset", first)
		}
	}

	// Bindings do not carry over to the next call.
	for i, bind := range []bool{true, false} {
		var typ sqlite3.Datatype
		err := db.DoStmt("SELECT ?", func(st *sqlite3.Stmt) error {
			if bind {
				st.BindInt64(1, 5)
			}
			if st.Step() {
				typ = st.ColumnType(0)
			}
			return st.Err()
		})
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]sqlite3.Datatype{true: sqlite3.INTEGER, false: sqlite3.NULL}[bind]; typ != want {
			t.Fatalf("call %d: column type %v, want %v", i, typ, want)
		}
	}

	if err := db.Close(); err != nil {
		t.Fatalf("close with cached statements: %v", err)
	}
	if err := insert("c"); err == nil {
		t.Fatal("DoStmt ran after Close")
	}
}
