package sqlstore_test

import (
	"bytes"
	"os"
	"testing"

	"github.com/durableobjects/durable/internal/sqlstore"
)

// A corrupted database breaks the store (Err is set, so the runtime logs
// the object and reopens it), however SQLite reports the corruption: as a
// bare error code when a statement steps on a bad page, or as an error
// with a message when opening the database reads a bad schema.
func TestCorruptionBreaksTheStore(t *testing.T) {
	for _, tc := range []struct {
		name string
		off  int64 // where the garbage goes; -1: every page after the first
		n    int
		read func(s *sqlstore.Store) error
	}{
		{"bad table pages, user SQL", -1, 0, func(s *sqlstore.Store) error {
			cur, err := s.Exec("SELECT * FROM t")
			if err != nil {
				return err
			}
			for cur.Next() {
			}
			return cur.Close()
		}},
		{"bad schema, user SQL", 100, 3996, func(s *sqlstore.Store) error {
			_, err := s.Exec("SELECT * FROM t")
			return err
		}},
		{"bad schema, KV", 100, 3996, func(s *sqlstore.Store) error {
			_, _, err := s.Get("k")
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestStore(t)
			ts.event(func(s *sqlstore.Store) {
				if _, err := s.Exec("CREATE TABLE t (a INTEGER PRIMARY KEY, b BLOB)"); err != nil {
					t.Fatal(err)
				}
				for i := range 50 {
					if _, err := s.Exec("INSERT INTO t VALUES (?, ?)", i, bytes.Repeat([]byte{'x'}, 500)); err != nil {
						t.Fatal(err)
					}
				}
				if err := s.Put("k", []byte("v")); err != nil {
					t.Fatal(err)
				}
			})
			ts.reopen()
			fi, err := os.Stat(ts.path)
			if err != nil {
				t.Fatal(err)
			}
			off, n := tc.off, tc.n
			if off < 0 {
				off, n = 4096, int(fi.Size())-4096
			}
			f, err := os.OpenFile(ts.path, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteAt(bytes.Repeat([]byte{0xA5}, n), off); err != nil {
				t.Fatal(err)
			}
			f.Close()

			ts.s.BeginTurn()
			err = tc.read(ts.s)
			ts.s.EndTurn(false)
			if err == nil {
				t.Fatal("read of a corrupted database succeeded")
			}
			if ts.s.Err() == nil {
				t.Fatalf("read failed with %v, but the store is not marked broken", err)
			}
			t.Logf("read: %v; store: %v", err, ts.s.Err())
			ts.s.RollbackBatch()
			ts.reopen()
		})
	}
}
