package sqlstore_test

import (
	"os"
	"testing"

	"github.com/durableobjects/durable/internal/sqlstore"
)

// A power loss can keep a new object's directory entry and lose the
// template copied into it. The file, empty or a prefix of the template, is
// completed on the next activation, and the commits in its WAL (synced, so
// they survived) are read back on top of it.
func TestTruncatedCreateIsRepaired(t *testing.T) {
	for _, keep := range []int64{0, 100, 4096} {
		ts := newTestStore(t)
		ts.event(func(s *sqlstore.Store) { mustPut(t, s, "a", []byte("1")) })
		// Leave the commit in the WAL (as after a crash: never
		// checkpointed), then cut the database file back.
		if err := ts.s.Evict(); err != nil {
			t.Fatal(err)
		}
		if ts.walSize() <= 0 {
			t.Fatal("no WAL after Evict")
		}
		if err := os.Truncate(ts.path, keep); err != nil {
			t.Fatal(err)
		}
		ts.s = sqlstore.New(ts.cfg, ts.path)
		ts.event(func(s *sqlstore.Store) {
			if got := getString(t, s, "a"); got != "1" {
				t.Errorf("database cut to %d bytes: a = %q, want 1 (from the WAL)", keep, got)
			}
			mustPut(t, s, "b", []byte("2"))
		})
		ts.reopen()
		ts.event(func(s *sqlstore.Store) {
			if got := getString(t, s, "a") + getString(t, s, "b"); got != "12" {
				t.Errorf("database cut to %d bytes, after reopening: a+b = %q, want 12", keep, got)
			}
		})
	}
}

// An empty file with no WAL is a new object: it reads as empty and takes
// writes.
func TestEmptyFileIsANewObject(t *testing.T) {
	ts := newTestStore(t)
	ts.event(func(s *sqlstore.Store) { mustPut(t, s, "a", []byte("1")) })
	ts.reopen() // checkpoints and removes the WAL
	if err := ts.s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(ts.path, 0); err != nil {
		t.Fatal(err)
	}
	ts.s = sqlstore.New(ts.cfg, ts.path)
	ts.event(func(s *sqlstore.Store) {
		if got := getString(t, s, "a"); got != "<missing>" {
			t.Errorf("a = %q in an empty file", got)
		}
		mustPut(t, s, "b", []byte("2"))
	})
	ts.reopen()
	ts.event(func(s *sqlstore.Store) {
		if got := getString(t, s, "b"); got != "2" {
			t.Errorf("b = %q, want 2", got)
		}
	})
}

// A short file that is not a piece of the template is not "repaired": the
// store reports it as broken instead of overwriting what it holds.
func TestShortForeignFileIsNotOverwritten(t *testing.T) {
	ts := newTestStore(t)
	ts.event(func(s *sqlstore.Store) { mustPut(t, s, "a", []byte("1")) })
	ts.reopen()
	if err := ts.s.Close(); err != nil {
		t.Fatal(err)
	}
	junk := []byte("not a database, and shorter than the template")
	if err := os.WriteFile(ts.path, junk, 0o644); err != nil {
		t.Fatal(err)
	}
	ts.s = sqlstore.New(ts.cfg, ts.path)
	ts.s.BeginTurn()
	_, _, err := ts.s.Get("a")
	ts.s.EndTurn(false)
	ts.s.RollbackBatch()
	if err == nil {
		t.Fatal("reading a corrupt file succeeded")
	}
	if got, _ := os.ReadFile(ts.path); string(got) != string(junk) {
		t.Fatalf("the corrupt file was changed: %q", got)
	}
}
