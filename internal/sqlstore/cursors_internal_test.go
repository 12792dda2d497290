package sqlstore

import (
	"errors"
	"path/filepath"
	"testing"
)

// TestFinishedCursorsAreNotKept: an event may run any number of statements;
// the store keeps only the cursors still open, so each Exec costs the same
// however many ran before it in the event (keeping them all made an event
// of n statements take O(n²) time and O(n) memory).
func TestFinishedCursorsAreNotKept(t *testing.T) {
	dir := t.TempDir()
	tmpl, err := NewTemplate(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	s := New(&Config{Template: tmpl, Dirs: &DirCache{}}, filepath.Join(dir, "o.sqlite"))
	defer s.Close()
	s.BeginTurn()
	if _, err := s.Exec("CREATE TABLE t (a)"); err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		if _, err := s.Exec("INSERT INTO t VALUES (?)", i); err != nil {
			t.Fatal(err)
		}
		cur, err := s.Exec("SELECT a FROM t WHERE a = ?", i)
		if err != nil {
			t.Fatal(err)
		}
		if !cur.Next() || cur.Next() {
			t.Fatal("want exactly one row")
		}
	}
	open, err := s.Exec("SELECT a FROM t ORDER BY a")
	if err != nil {
		t.Fatal(err)
	}
	if got := len(s.cursors); got != 1 {
		t.Errorf("after 2001 statements, one of them still open, the store holds %d cursors, want 1", got)
	}
	if err := s.EndTurn(true); err != nil {
		t.Fatal(err)
	}
	if got := len(s.cursors); got != 0 {
		t.Errorf("after the turn the store holds %d cursors", got)
	}
	if open.Next() || !errors.Is(open.Err(), ErrCursorClosed) {
		t.Errorf("the open cursor after its turn: Err = %v", open.Err())
	}
	if _, err := s.CommitBatch(); err != nil {
		t.Fatal(err)
	}
}
