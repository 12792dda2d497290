package sqlstore_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/durableobjects/durable/internal/fullfs"
	"github.com/durableobjects/durable/internal/sqlstore"
)

// copyFiles copies the object's database and WAL, as they are on disk now
// with the store still open, to a new directory: what a crash would leave.
func (ts *testStore) copyFiles() *testStore {
	ts.t.Helper()
	dir := ts.t.TempDir()
	cp := &testStore{t: ts.t, cfg: ts.cfg, path: filepath.Join(dir, "object.sqlite")}
	for _, suffix := range []string{"", "-wal"} {
		b, err := os.ReadFile(ts.path + suffix)
		if err != nil {
			ts.t.Fatal(err)
		}
		if err := os.WriteFile(cp.path+suffix, b, 0o644); err != nil {
			ts.t.Fatal(err)
		}
	}
	cp.s = sqlstore.New(cp.cfg, cp.path)
	ts.t.Cleanup(func() { cp.s.Close() })
	return cp
}

// The WAL writes of a commit are gathered in memory; they must be in the
// file when CommitBatch returns, since that is what the node's sync round
// makes durable. A copy of the files taken right after the commit, with
// the store still open, holds every commit: small ones, and one larger
// than a gathered write.
func TestCommitIsInTheWALFileWhenItReturns(t *testing.T) {
	ts := newTestStore(t)
	big := bytes.Repeat([]byte("0123456789abcdef"), 3<<19/16) // 1.5 MiB: more than one gathered write
	ts.event(func(s *sqlstore.Store) { mustPut(t, s, "a", []byte("1")) })
	ts.event(func(s *sqlstore.Store) { mustPut(t, s, "b", []byte("2")) })
	ts.event(func(s *sqlstore.Store) { mustPut(t, s, "big", big) })
	ts.event(func(s *sqlstore.Store) { mustPut(t, s, "c", []byte("3")) })

	cp := ts.copyFiles()
	cp.event(func(s *sqlstore.Store) {
		if got := getString(t, s, "a") + getString(t, s, "b") + getString(t, s, "c"); got != "123" {
			t.Errorf("a+b+c in the copy = %q, want 123", got)
		}
		if got := getString(t, s, "big"); got != string(big) {
			t.Errorf("big in the copy: %d bytes, want the %d written", len(got), len(big))
		}
	})
}

// A commit whose WAL write fails (a full disk) fails, breaks the store,
// and leaves the database as it was: closing the broken store must not
// checkpoint frames that never reached the file, and the object reopens
// with every earlier commit. Needs root (a small tmpfs).
func TestFailedWALWriteBreaksTheStoreAndLosesNothing(t *testing.T) {
	mnt := fullfs.Mount(t, "4m")
	ts := newTestStore(t)
	ts.path = filepath.Join(mnt, "object.sqlite")
	ts.s = sqlstore.New(ts.cfg, ts.path)
	defer ts.s.Close() // before the unmount
	for i := range 10 {
		ts.event(func(s *sqlstore.Store) { mustPut(t, s, fmt.Sprint("k", i), []byte(fmt.Sprint(i))) })
	}

	// Fill the file system, then commit more than fits.
	filler := fullfs.Fill(t, mnt)
	defer filler.Close() // before the unmount, if the test fails early
	ts.s.BeginTurn()
	for i := range 50 {
		if err := ts.s.Put(fmt.Sprint("lost", i), bytes.Repeat([]byte{'x'}, 3000)); err != nil {
			t.Logf("Put on a full disk: %v", err) // a cache spill may fail it already
			break
		}
	}
	ts.s.EndTurn(true)
	_, err := ts.s.CommitBatch()
	if err == nil {
		t.Fatal("CommitBatch on a full disk succeeded")
	}
	if ts.s.Err() == nil {
		t.Fatalf("CommitBatch failed with %v, but the store is not marked broken", err)
	}
	t.Logf("commit on a full disk: %v", err)

	// The runtime closes a broken store and opens the object afresh.
	filler.Close()
	if err := os.Remove(filler.Name()); err != nil {
		t.Fatal(err)
	}
	ts.s.Close()
	ts.s = sqlstore.New(ts.cfg, ts.path)
	ts.event(func(s *sqlstore.Store) {
		var got []string
		for i := range 10 {
			got = append(got, getString(t, s, fmt.Sprint("k", i)))
		}
		if want := "0 1 2 3 4 5 6 7 8 9"; strings.Join(got, " ") != want {
			t.Errorf("after the failed commit, k0..k9 = %q, want %q", strings.Join(got, " "), want)
		}
		if v := getString(t, s, "lost0"); v != "<missing>" {
			t.Errorf("lost0 = %.10q…, want nothing: its commit failed", v)
		}
		mustPut(t, s, "after", []byte("ok"))
	})
	ts.event(func(s *sqlstore.Store) {
		if got := getString(t, s, "after"); got != "ok" {
			t.Errorf("after = %q, want ok", got)
		}
	})
}

// A checkpoint that fails is reported and changes nothing else: the
// commits stand (they are in the WAL), the store keeps working, and the
// checkpoint is tried again after a later commit. The failure here is a
// full disk on which the database cannot grow while commits still fit:
// after a checkpoint the WAL is rewritten from its start, in blocks it
// already has. Needs root (a small tmpfs).
func TestFailedCheckpointIsReportedAndRetried(t *testing.T) {
	mnt := fullfs.Mount(t, "4m")
	ts := newTestStore(t)
	var reported []error
	cfg := *ts.cfg
	cfg.OnCheckpointError = func(_ string, err error) { reported = append(reported, err) }
	ts.cfg = &cfg
	ts.path = filepath.Join(mnt, "object.sqlite")
	ts.s = sqlstore.New(ts.cfg, ts.path)
	defer ts.s.Close() // before the unmount

	// One commit of more frames than CheckpointPages, checkpointed; the
	// next commit restarts the WAL, whose file keeps those blocks, so later
	// commits up to the next checkpoint rewrite blocks the file has.
	value := bytes.Repeat([]byte{'v'}, 3000)
	ts.event(func(s *sqlstore.Store) {
		for i := range sqlstore.CheckpointPages + 40 {
			mustPut(t, s, fmt.Sprint("old", i), value)
		}
	})
	ts.event(func(s *sqlstore.Store) { mustPut(t, s, "counter", []byte("0")) })
	if len(reported) != 0 {
		t.Fatalf("checkpoint failed before the disk was full: %v", reported)
	}
	walBlocks := ts.walSize()

	filler := fullfs.Fill(t, mnt)
	defer filler.Close()
	// New pages, which the database must grow to take: the commits fit in
	// the WAL, the checkpoint does not fit in the database.
	var keys []string
	for i := 0; len(reported) == 0; i++ {
		if i >= sqlstore.CheckpointPages {
			t.Fatalf("no checkpoint failed after %d commits of new pages on a full disk", i)
		}
		key := fmt.Sprint("new", i)
		ts.event(func(s *sqlstore.Store) { mustPut(t, s, key, value) })
		keys = append(keys, key)
	}
	t.Logf("after %d commits of new pages (WAL %d bytes, kept %d): checkpoint failed: %v", len(keys), ts.walSize(), walBlocks, reported[0])
	if err := ts.s.Err(); err != nil {
		t.Fatalf("a failed checkpoint broke the store: %v", err)
	}
	ts.event(func(s *sqlstore.Store) {
		for _, k := range keys {
			if got := getString(t, s, k); got != string(value) {
				t.Fatalf("%s after the failed checkpoint: %.10q…, want the value committed", k, got)
			}
		}
	})

	// With room again, the next commit's checkpoint goes through: the WAL
	// is rewritten from its start, so it does not grow.
	filler.Close()
	if err := os.Remove(filler.Name()); err != nil {
		t.Fatal(err)
	}
	failures := len(reported)
	dbBefore := fileSize(t, ts.path)
	ts.event(func(s *sqlstore.Store) { mustPut(t, s, "after", []byte("room")) })
	if got := fileSize(t, ts.path); got <= dbBefore {
		t.Fatalf("database %d bytes after the next commit, was %d: the checkpoint was not tried again", got, dbBefore)
	}
	walAfterRetry := ts.walSize()
	for i := range 10 {
		ts.event(func(s *sqlstore.Store) { mustPut(t, s, "counter", []byte(fmt.Sprint("again", i))) })
	}
	if len(reported) != failures {
		t.Fatalf("the checkpoint failed again with room on the disk: %v", reported[failures:])
	}
	if got := ts.walSize(); got != walAfterRetry {
		t.Errorf("WAL size went %d → %d over 10 small commits after the retry: want it rewritten in place (the retried checkpoint did not restart it)", walAfterRetry, got)
	}
	ts.reopen()
	ts.event(func(s *sqlstore.Store) {
		for _, k := range append(keys, "after") {
			if getString(t, s, k) == "<missing>" {
				t.Fatalf("%s missing after the retried checkpoint and a reopen", k)
			}
		}
	})
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
