package sqlstore_test

import (
	"bytes"
	"fmt"
	"os"
	"testing"

	"github.com/durableobjects/durable/internal/sqlstore"
)

// walSize returns the size of the object's WAL, or -1 if there is none.
func (ts *testStore) walSize() int64 {
	ts.t.Helper()
	fi, err := os.Stat(ts.path + "-wal")
	if os.IsNotExist(err) {
		return -1
	}
	if err != nil {
		ts.t.Fatal(err)
	}
	return fi.Size()
}

// evictAndReopen evicts the store and opens the object afresh.
func (ts *testStore) evictAndReopen() {
	ts.t.Helper()
	if err := ts.s.Evict(); err != nil {
		ts.t.Fatalf("Evict: %v", err)
	}
	ts.s = sqlstore.New(ts.cfg, ts.path)
}

// A small WAL stays as it was through an eviction (no checkpoint, no new
// file at the next activation), and what it holds is read back after it.
func TestEvictKeepsSmallWAL(t *testing.T) {
	ts := newTestStore(t)
	ts.event(func(s *sqlstore.Store) { mustPut(t, s, "a", []byte("1")) })
	before := ts.walSize()
	if before <= 0 {
		t.Fatalf("WAL size after a commit = %d, want > 0", before)
	}
	dbBefore, err := os.ReadFile(ts.path)
	if err != nil {
		t.Fatal(err)
	}
	ts.evictAndReopen()
	if got := ts.walSize(); got != before {
		t.Errorf("WAL size after Evict = %d, want %d (left as it was)", got, before)
	}
	if db, _ := os.ReadFile(ts.path); !bytes.Equal(db, dbBefore) {
		t.Errorf("database file changed by Evict: it was checkpointed")
	}
	ts.event(func(s *sqlstore.Store) {
		if got := getString(t, s, "a"); got != "1" {
			t.Errorf("after Evict, a = %q, want 1", got)
		}
		mustPut(t, s, "b", []byte("2"))
	})
	ts.evictAndReopen()
	ts.event(func(s *sqlstore.Store) {
		if got, want := getString(t, s, "a")+getString(t, s, "b"), "12"; got != want {
			t.Errorf("after a second Evict, a+b = %q, want %q", got, want)
		}
	})
	// Close (the runtime shutting down) checkpoints and removes the WAL.
	ts.reopen()
	if got := ts.walSize(); got != -1 {
		t.Errorf("WAL size after Close = %d, want no WAL", got)
	}
	ts.event(func(s *sqlstore.Store) {
		if got, want := getString(t, s, "a")+getString(t, s, "b"), "12"; got != want {
			t.Errorf("after Close, a+b = %q, want %q", got, want)
		}
	})
}

// A WAL over KeepWALBytes is checkpointed and removed by Evict, so evicted
// objects never keep more than that beside their database.
func TestEvictCheckpointsLargeWAL(t *testing.T) {
	ts := newTestStore(t)
	value := bytes.Repeat([]byte("x"), 3000)
	ts.event(func(s *sqlstore.Store) { // one commit of more pages than Evict keeps
		for i := range 100 {
			mustPut(t, s, fmt.Sprint("k", i), value)
		}
	})
	if got := ts.walSize(); got <= sqlstore.KeepWALBytes {
		t.Fatalf("WAL size after a large commit = %d, want > %d", got, sqlstore.KeepWALBytes)
	}
	ts.evictAndReopen()
	if got := ts.walSize(); got != -1 {
		t.Errorf("WAL size after evicting a large WAL = %d, want no WAL", got)
	}
	ts.event(func(s *sqlstore.Store) {
		if got := getString(t, s, "k0"); got != string(value) {
			t.Errorf("k0 after Evict = %.20q…, want the value written", got)
		}
	})
}

// Objects with no file share scratch databases; a PRAGMA run on one does
// not reach another object.
func TestScratchPoolDoesNotLeakPragmas(t *testing.T) {
	a := newTestStore(t)
	a.cfg.Scratch = &sqlstore.ScratchPool{}
	t.Cleanup(func() { a.cfg.Scratch.Close() })
	b := &testStore{t: t, cfg: a.cfg, path: a.path + "-b"}
	b.s = sqlstore.New(b.cfg, b.path)
	t.Cleanup(func() { b.s.Close() })
	like := func(ts *testStore) (v int64) {
		ts.event(func(s *sqlstore.Store) {
			rows := mustExec(t, s, "SELECT 'a' LIKE 'A'")
			v = rows[0][0].(int64)
		})
		return v
	}
	for range 3 { // the pool's scratch is reused
		if got := like(b); got != 1 {
			t.Fatalf("LIKE before any PRAGMA = %d, want 1", got)
		}
	}
	a.event(func(s *sqlstore.Store) {
		mustExec(t, s, "PRAGMA case_sensitive_like = ON")
		if rows := mustExec(t, s, "SELECT 'a' LIKE 'A'"); rows[0][0].(int64) != 0 {
			t.Errorf("LIKE after the PRAGMA, same turn = %v, want 0", rows[0][0])
		}
	})
	for range 3 {
		if got := like(b); got != 1 {
			t.Fatalf("another object's LIKE after a PRAGMA = %d, want 1 (the PRAGMA leaked)", got)
		}
	}
	if a.fileExists() || b.fileExists() {
		t.Error("read-only SQL created a file")
	}
}

// Small commits do not grow the WAL past CheckpointPages frames: a commit
// that reaches them is checkpointed, and the next one overwrites the WAL
// from its start, so a sync round rewrites blocks the file already has
// instead of growing it (which costs the filesystem an allocation and an
// inode write per file per round).
func TestWALIsReusedAfterCheckpoint(t *testing.T) {
	ts := newTestStore(t)
	const most = 32 + sqlstore.CheckpointPages*(24+4096) // header and frames
	for i := range 4 * sqlstore.CheckpointPages {
		ts.event(func(s *sqlstore.Store) { mustPut(t, s, "k", []byte(fmt.Sprint(i))) })
		if got := ts.walSize(); got > most {
			t.Fatalf("after %d one-page commits the WAL is %d bytes, want <= %d (%d frames)",
				i+1, got, most, sqlstore.CheckpointPages)
		}
	}
	ts.evictAndReopen()
	ts.event(func(s *sqlstore.Store) {
		if got, want := getString(t, s, "k"), fmt.Sprint(4*sqlstore.CheckpointPages-1); got != want {
			t.Errorf("k after reuse and Evict = %q, want %q", got, want)
		}
	})
}
