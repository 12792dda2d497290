package sqlstore_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/durableobjects/durable/internal/sqlstore"
	"github.com/ncruces/go-sqlite3"
)

// readOnlyOps are operations that must not create an object's file.
var readOnlyOps = []struct {
	name string
	run  func(s *sqlstore.Store) error
}{
	{"Get", func(s *sqlstore.Store) error { _, _, err := s.Get("k"); return err }},
	{"Get empty key", func(s *sqlstore.Store) error { _, _, err := s.Get(""); return err }},
	{"GetMany", func(s *sqlstore.Store) error { _, err := s.GetMany([]string{"a", "b"}); return err }},
	{"List", func(s *sqlstore.Store) error {
		_, err := s.List(sqlstore.ListOptions{Prefix: "a", Reverse: true})
		return err
	}},
	{"Delete", func(s *sqlstore.Store) error { _, err := s.Delete("k"); return err }},
	{"DeleteMany", func(s *sqlstore.Store) error { _, err := s.DeleteMany([]string{"a", "b"}); return err }},
	{"DeleteAll", func(s *sqlstore.Store) error { return s.DeleteAll() }},
	{"MetaInt (GetAlarm)", func(s *sqlstore.Store) error { _, _, err := s.MetaInt("alarm"); return err }},
	{"DeleteMeta (DeleteAlarm)", func(s *sqlstore.Store) error { return s.DeleteMeta("alarm") }},
	{"Size", func(s *sqlstore.Store) error { _, err := s.Size(); return err }},
	{"SELECT", func(s *sqlstore.Store) error { _, err := s.Exec("SELECT 1, 'x'"); return err }},
	{"SELECT with arguments", func(s *sqlstore.Store) error { _, err := s.Exec("SELECT ? + ?", 1, 2); return err }},
	{"PRAGMA table_list", func(s *sqlstore.Store) error { _, err := s.Exec("PRAGMA table_list"); return err }},
	{"PRAGMA data_version", func(s *sqlstore.Store) error { _, err := s.Exec("PRAGMA data_version"); return err }},
	{"SELECT from sqlite_schema", func(s *sqlstore.Store) error { _, err := s.Exec("SELECT * FROM sqlite_schema"); return err }},
	{"read-only Transaction", func(s *sqlstore.Store) error {
		return s.Transaction(func() error {
			_, _, err := s.Get("k")
			if err == nil {
				_, err = s.Exec("SELECT 1")
			}
			return err
		})
	}},
	{"failing Transaction that only read", func(s *sqlstore.Store) error {
		err := s.Transaction(func() error { s.Get("k"); return errors.New("no") })
		if err == nil {
			return errors.New("the Transaction's error was lost")
		}
		return nil
	}},
}

func TestNoFileUntilFirstWrite(t *testing.T) {
	ts := newTestStore(t)
	for _, op := range readOnlyOps {
		ts.s.BeginTurn()
		if err := op.run(ts.s); err != nil {
			t.Errorf("%s on a virgin object: %v", op.name, err)
		}
		if err := ts.s.EndTurn(true); err != nil {
			t.Fatal(err)
		}
		wrote, err := ts.s.CommitBatch()
		if err != nil || wrote {
			t.Errorf("%s: CommitBatch = %v, %v; want nothing written", op.name, wrote, err)
		}
		if ts.fileExists() {
			t.Fatalf("%s created the object's file", op.name)
		}
	}
	// Reads find nothing, and failed writes write nothing.
	ts.event(func(s *sqlstore.Store) {
		if v, ok, err := s.Get("k"); v != nil || ok || err != nil {
			t.Errorf("Get = %q, %v, %v", v, ok, err)
		}
		if es, err := s.List(sqlstore.ListOptions{}); len(es) != 0 || err != nil {
			t.Errorf("List = %v, %v", es, err)
		}
		if ok, err := s.Delete("k"); ok || err != nil {
			t.Errorf("Delete = %v, %v", ok, err)
		}
		if n, err := s.DeleteMany([]string{"k"}); n != 0 || err != nil {
			t.Errorf("DeleteMany = %v, %v", n, err)
		}
		for _, q := range []string{"SELECT * FROM users", "INSERT INTO users VALUES (1)", "UPDATE users SET a = 1", "DELETE FROM users"} {
			_, err := s.Exec(q)
			if err == nil || !strings.Contains(err.Error(), "no such table: users") {
				t.Errorf("%q on a virgin object: %v, want \"no such table: users\"", q, err)
			}
		}
		if err := s.Put(strings.Repeat("k", sqlstore.MaxKeySize+1), nil); err == nil {
			t.Error("oversized key accepted")
		}
		if err := s.PutMany(make([]sqlstore.Entry, sqlstore.MaxBatchKeys+1)); err == nil {
			t.Error("oversized batch accepted")
		}
		if _, err := s.Exec("SELECT * FROM _durable_kv"); !errors.Is(err, sqlstore.ErrNotAllowed) {
			t.Errorf("reading the KV table on a virgin object: %v", err)
		}
	})
	if ts.fileExists() {
		t.Fatal("reads and refused writes created the object's file")
	}
	if _, err := os.Stat(filepath.Dir(ts.path)); err == nil {
		t.Error("the object's fan-out directory was created without a write")
	}
	if ts.s.TakeCreated() {
		t.Error("TakeCreated reports a file that was not created")
	}
	// A closed and reopened virgin object still has no file.
	ts.reopen()
	ts.event(func(s *sqlstore.Store) {
		if _, err := s.Exec("SELECT 1"); err != nil {
			t.Fatal(err)
		}
	})
	if ts.fileExists() {
		t.Fatal("the object's file appeared after a reopen")
	}
	// The first write creates it.
	var wrote bool
	ts.s.BeginTurn()
	mustPut(t, ts.s, "k", []byte("v"))
	if err := ts.s.EndTurn(true); err != nil {
		t.Fatal(err)
	}
	wrote, err := ts.s.CommitBatch()
	if err != nil || !wrote {
		t.Errorf("first write: CommitBatch = %v, %v; want wrote", wrote, err)
	}
	if !ts.fileExists() {
		t.Fatal("no file after the first write")
	}
	if !ts.s.TakeCreated() || ts.s.TakeCreated() {
		t.Error("TakeCreated did not report the new file exactly once")
	}
	ts.reopen()
	ts.event(func(s *sqlstore.Store) {
		if got := getString(t, s, "k"); got != "v" {
			t.Errorf("k = %q", got)
		}
	})
}

func TestFirstWriteCreatesFile(t *testing.T) {
	writes := []struct {
		name string
		run  func(s *sqlstore.Store) error
	}{
		{"Put", func(s *sqlstore.Store) error { return s.Put("k", nil) }},
		{"PutMany", func(s *sqlstore.Store) error { return s.PutMany([]sqlstore.Entry{{Key: "k"}}) }},
		{"SetMetaInt (SetAlarm)", func(s *sqlstore.Store) error { return s.SetMetaInt("alarm", 1) }},
		{"CREATE TABLE", func(s *sqlstore.Store) error { _, err := s.Exec("CREATE TABLE t (a)"); return err }},
		{"SELECT then CREATE TABLE", func(s *sqlstore.Store) error {
			if _, err := s.Exec("SELECT 1"); err != nil {
				return err
			}
			_, err := s.Exec("SELECT 1; CREATE TABLE t (a)")
			return err
		}},
		{"write inside a Transaction", func(s *sqlstore.Store) error {
			return s.Transaction(func() error { return s.Put("k", nil) })
		}},
	}
	for _, w := range writes {
		t.Run(w.name, func(t *testing.T) {
			ts := newTestStore(t)
			ts.event(func(s *sqlstore.Store) {
				if err := w.run(s); err != nil {
					t.Fatal(err)
				}
			})
			if !ts.fileExists() {
				t.Fatal("no file after the first write")
			}
			ts.reopen()
			ts.event(func(s *sqlstore.Store) {
				// The file is a complete object database.
				if got := queryInt(t, s, "SELECT count(*) FROM sqlite_schema WHERE name LIKE '\\_durable\\_%' ESCAPE '\\'"); got != 2 {
					t.Errorf("%d internal tables, want 2", got)
				}
				if rows := mustExec(t, s, "PRAGMA quick_check"); len(rows) != 1 || rows[0][0] != "ok" {
					t.Errorf("quick_check = %v", rows)
				}
			})
		})
	}
}

func TestEventWritesAreUndoneWithTheirTurn(t *testing.T) {
	ts := newTestStore(t)
	// A failing first event of a virgin object.
	ts.failedEvent(func(s *sqlstore.Store) {
		mustPut(t, s, "a", []byte("lost"))
		mustExec(t, s, "CREATE TABLE t (x); INSERT INTO t VALUES (1)")
	})
	ts.event(func(s *sqlstore.Store) {
		if got := getString(t, s, "a"); got != "<missing>" {
			t.Errorf("a = %q after an undone event", got)
		}
		if _, err := s.Exec("SELECT * FROM t"); err == nil || !strings.Contains(err.Error(), "no such table") {
			t.Errorf("a table created by an undone event: %v", err)
		}
		mustPut(t, s, "a", []byte("1"))
		mustExec(t, s, "CREATE TABLE t (x); INSERT INTO t VALUES (1)")
	})
	ts.failedEvent(func(s *sqlstore.Store) {
		mustPut(t, s, "a", []byte("2"))
		mustPut(t, s, "b", []byte("2"))
		if _, err := s.Delete("a"); err != nil {
			t.Fatal(err)
		}
		mustExec(t, s, "INSERT INTO t VALUES (2); DROP TABLE t; CREATE TABLE u (y)")
		if err := s.SetMetaInt("alarm", 5); err != nil {
			t.Fatal(err)
		}
	})
	ts.reopen()
	ts.event(func(s *sqlstore.Store) {
		if got := listKeys(t, s, sqlstore.ListOptions{}); !slices.Equal(got, []string{"a"}) || getString(t, s, "a") != "1" {
			t.Errorf("keys %q, a = %q after an undone event", got, getString(t, s, "a"))
		}
		if got := userSchema(t, s); !slices.Equal(got, []string{"table t"}) {
			t.Errorf("schema %q after an undone event", got)
		}
		if n := queryInt(t, s, "SELECT count(*) FROM t"); n != 1 {
			t.Errorf("t has %d rows", n)
		}
		if _, ok, _ := s.MetaInt("alarm"); ok {
			t.Error("the undone event's alarm survived")
		}
	})
}

// TestBatchOfTurns: several events in one batch commit together, and an
// undone one takes only its own writes with it.
func TestBatchOfTurns(t *testing.T) {
	ts := newTestStore(t)
	s := ts.s
	turns := []struct {
		key  string
		keep bool
	}{{"e1", true}, {"e2", false}, {"e3", true}, {"e4", false}}
	for _, tt := range turns {
		s.BeginTurn()
		mustPut(t, s, tt.key, []byte("v"))
		mustExec(t, s, "CREATE TABLE IF NOT EXISTS t (k); INSERT INTO t VALUES (?)", tt.key)
		// A later turn sees the kept writes of earlier ones.
		if got := listKeys(t, s, sqlstore.ListOptions{}); !slices.Contains(got, "e1") {
			t.Errorf("turn %s does not see e1: %q", tt.key, got)
		}
		if err := s.EndTurn(tt.keep); err != nil {
			t.Fatal(err)
		}
	}
	if wrote, err := s.CommitBatch(); err != nil || !wrote {
		t.Fatalf("CommitBatch = %v, %v", wrote, err)
	}
	ts.reopen()
	ts.event(func(s *sqlstore.Store) {
		if got := listKeys(t, s, sqlstore.ListOptions{}); !slices.Equal(got, []string{"e1", "e3"}) {
			t.Errorf("keys = %q, want e1 and e3", got)
		}
		if rows := mustExec(t, s, "SELECT k FROM t ORDER BY k"); len(rows) != 2 || rows[0][0] != "e1" || rows[1][0] != "e3" {
			t.Errorf("rows = %v", rows)
		}
	})
	// The first writing turn of a batch opens its transaction; undoing
	// that turn undoes only its writes, and the turns after it open the
	// transaction again or add to it.
	for _, tt := range []struct {
		key  string
		keep bool
	}{{"f1", false}, {"f2", false}, {"f3", true}, {"f4", false}, {"f5", true}} {
		s := ts.s
		s.BeginTurn()
		err := s.Transaction(func() error { return s.Put(tt.key+"-nested", nil) })
		if err != nil {
			t.Fatal(err)
		}
		mustPut(t, s, tt.key, []byte("v"))
		if err := s.EndTurn(tt.keep); err != nil {
			t.Fatal(err)
		}
	}
	if wrote, err := ts.s.CommitBatch(); err != nil || !wrote {
		t.Fatalf("CommitBatch = %v, %v", wrote, err)
	}
	// A batch whose only writing turn was undone writes nothing.
	ts.s.BeginTurn()
	mustPut(t, ts.s, "g1", nil)
	if err := ts.s.EndTurn(false); err != nil {
		t.Fatal(err)
	}
	if wrote, err := ts.s.CommitBatch(); err != nil || wrote {
		t.Fatalf("CommitBatch after the only writing turn was undone = %v, %v", wrote, err)
	}
	ts.reopen()
	ts.event(func(s *sqlstore.Store) {
		want := []string{"e1", "e3", "f3", "f3-nested", "f5", "f5-nested"}
		if got := listKeys(t, s, sqlstore.ListOptions{}); !slices.Equal(got, want) {
			t.Errorf("keys = %q, want %q", got, want)
		}
	})
	// A batch that only read writes nothing.
	ts.s.BeginTurn()
	getString(t, ts.s, "e1")
	ts.s.EndTurn(true)
	if wrote, err := ts.s.CommitBatch(); wrote || err != nil {
		t.Errorf("read-only batch: CommitBatch = %v, %v", wrote, err)
	}
	// RollbackBatch discards kept turns too.
	ts.s.BeginTurn()
	mustPut(t, ts.s, "rolled back", nil)
	ts.s.EndTurn(true)
	ts.s.RollbackBatch()
	ts.reopen()
	ts.event(func(s *sqlstore.Store) {
		if got := getString(t, s, "rolled back"); got != "<missing>" {
			t.Error("RollbackBatch kept a write")
		}
	})
}

func TestTransaction(t *testing.T) {
	errFn := errors.New("fn failed")
	tests := []struct {
		name string
		run  func(t *testing.T, s *sqlstore.Store) // writes "outer" itself, and others
		want []string                              // keys committed
	}{
		{"success", func(t *testing.T, s *sqlstore.Store) {
			err := s.Transaction(func() error {
				mustExec(t, s, "INSERT INTO t VALUES ('in')")
				return s.Put("in", nil)
			})
			if err != nil {
				t.Fatal(err)
			}
		}, []string{"in", "outer"}},
		{"error rolls back", func(t *testing.T, s *sqlstore.Store) {
			err := s.Transaction(func() error {
				mustPut(t, s, "in", nil)
				mustExec(t, s, "INSERT INTO t VALUES ('in')")
				// Inside, the transaction sees its own writes.
				if getString(t, s, "in") != "" || queryInt(t, s, "SELECT count(*) FROM t") != 2 {
					t.Error("a transaction does not see its own writes")
				}
				return errFn
			})
			if !errors.Is(err, errFn) {
				t.Errorf("Transaction = %v, want fn's error", err)
			}
		}, []string{"outer"}},
		{"panic rolls back", func(t *testing.T, s *sqlstore.Store) {
			func() {
				defer func() {
					if recover() == nil {
						t.Error("the panic did not propagate")
					}
				}()
				s.Transaction(func() error {
					mustPut(t, s, "in", nil)
					mustExec(t, s, "INSERT INTO t VALUES ('in')")
					panic("boom")
				})
			}()
			mustPut(t, s, "after", nil) // the event goes on
		}, []string{"after", "outer"}},
		{"error with no write", func(t *testing.T, s *sqlstore.Store) {
			s.Transaction(func() error { getString(t, s, "outer"); return errFn })
			mustPut(t, s, "after", nil)
		}, []string{"after", "outer"}},
		{"nested, inner fails", func(t *testing.T, s *sqlstore.Store) {
			err := s.Transaction(func() error {
				mustPut(t, s, "a", nil)
				if err := s.Transaction(func() error { mustPut(t, s, "b", nil); return errFn }); !errors.Is(err, errFn) {
					t.Errorf("inner = %v", err)
				}
				mustPut(t, s, "c", nil)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}, []string{"a", "c", "outer"}},
		{"nested, outer fails", func(t *testing.T, s *sqlstore.Store) {
			s.Transaction(func() error {
				mustPut(t, s, "a", nil)
				if err := s.Transaction(func() error { return s.Put("b", nil) }); err != nil {
					t.Error(err)
				}
				return errFn
			})
		}, []string{"outer"}},
		{"nested, inner writes first", func(t *testing.T, s *sqlstore.Store) {
			s.Transaction(func() error {
				s.Transaction(func() error { return s.Put("b", nil) })
				s.Transaction(func() error { mustPut(t, s, "x", nil); return errFn })
				return s.Put("a", nil)
			})
		}, []string{"a", "b", "outer"}},
		{"deep nesting", func(t *testing.T, s *sqlstore.Store) {
			var nest func(depth int) error
			nest = func(depth int) error {
				if depth == 10 {
					return nil
				}
				return s.Transaction(func() error {
					key := string(rune('a' + depth))
					mustPut(t, s, key, nil)
					err := nest(depth + 1)
					if depth == 6 {
						return errFn // undoes g, h, i, j
					}
					if depth > 6 && err != nil {
						return err
					}
					return nil
				})
			}
			nest(0)
		}, []string{"a", "b", "c", "d", "e", "f", "outer"}},
		{"DeleteAll inside, rolled back", func(t *testing.T, s *sqlstore.Store) {
			s.Transaction(func() error {
				if err := s.DeleteAll(); err != nil {
					t.Fatal(err)
				}
				return errFn
			})
		}, []string{"outer"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestStore(t)
			ts.event(func(s *sqlstore.Store) {
				mustExec(t, s, "CREATE TABLE t (k)")
			})
			ts.event(func(s *sqlstore.Store) {
				mustPut(t, s, "outer", nil)
				mustExec(t, s, "INSERT INTO t VALUES ('outer')")
				if s.InTransaction() {
					t.Error("InTransaction outside Transaction")
				}
				tt.run(t, s)
				if s.InTransaction() {
					t.Error("InTransaction after Transaction returned")
				}
			})
			ts.reopen()
			ts.event(func(s *sqlstore.Store) {
				if got := listKeys(t, s, sqlstore.ListOptions{}); !slices.Equal(got, tt.want) {
					t.Errorf("keys = %q, want %q", got, tt.want)
				}
				rows := mustExec(t, s, "SELECT k FROM t ORDER BY k")
				wantRows := 1
				if slices.Contains(tt.want, "in") {
					wantRows = 2
				}
				if len(rows) != wantRows {
					t.Errorf("t = %v, want %d rows", rows, wantRows)
				}
			})
		})
	}
}

// TestTransactionOnVirginObject: a Transaction whose writes are rolled back
// still leaves the object empty, and one that only reads leaves no file.
func TestTransactionOnVirginObject(t *testing.T) {
	ts := newTestStore(t)
	ts.event(func(s *sqlstore.Store) {
		err := s.Transaction(func() error {
			if s.InTransaction() != true {
				t.Error("InTransaction = false inside Transaction")
			}
			getString(t, s, "k")
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	if ts.fileExists() {
		t.Fatal("a read-only Transaction created the file")
	}
	ts.event(func(s *sqlstore.Store) {
		s.Transaction(func() error {
			mustPut(t, s, "k", []byte("v"))
			return errors.New("undo")
		})
		if got := getString(t, s, "k"); got != "<missing>" {
			t.Errorf("k = %q after the Transaction rolled back", got)
		}
	})
	ts.reopen()
	ts.event(func(s *sqlstore.Store) {
		if got := listKeys(t, s, sqlstore.ListOptions{}); len(got) != 0 {
			t.Errorf("keys = %q", got)
		}
	})
}

func TestReadsSeeOwnWrites(t *testing.T) {
	ts := newTestStore(t)
	ts.event(func(s *sqlstore.Store) {
		mustPut(t, s, "k", []byte("1"))
		if got := getString(t, s, "k"); got != "1" {
			t.Errorf("Get after Put = %q", got)
		}
		mustPut(t, s, "k", []byte("2"))
		if m, _ := s.GetMany([]string{"k"}); string(m["k"]) != "2" {
			t.Errorf("GetMany after a second Put = %q", m["k"])
		}
		if es, _ := s.List(sqlstore.ListOptions{}); len(es) != 1 || string(es[0].Value) != "2" {
			t.Errorf("List after Put = %v", es)
		}
		mustExec(t, s, "CREATE TABLE t (a); INSERT INTO t VALUES (1)")
		if n := queryInt(t, s, "SELECT count(*) FROM t"); n != 1 {
			t.Errorf("count after INSERT = %d", n)
		}
		if ok, _ := s.Delete("k"); !ok || getString(t, s, "k") != "<missing>" {
			t.Error("Get after Delete still finds the key")
		}
		if err := s.SetMetaInt("alarm", 9); err != nil {
			t.Fatal(err)
		}
		if v, ok, _ := s.MetaInt("alarm"); v != 9 || !ok {
			t.Errorf("MetaInt after SetMetaInt = %d, %v", v, ok)
		}
	})
}

// BenchmarkEventCommit: one event that writes one key, as a batch of its
// own, committed to the WAL (no sync): the statements every write event
// pays for.
func BenchmarkEventCommit(b *testing.B) {
	dir := b.TempDir()
	tmpl, err := sqlstore.NewTemplate(dir, "")
	if err != nil {
		b.Fatal(err)
	}
	s := sqlstore.New(&sqlstore.Config{Template: tmpl, Dirs: &sqlstore.DirCache{}}, filepath.Join(dir, "o.sqlite"))
	defer s.Close()
	v := []byte("value")
	for b.Loop() {
		commitOneKey(b, s, v)
		s.Checkpoint()
	}
}

// commitOneKey is an event that writes key "k", as a batch of its own,
// committed to the WAL.
func commitOneKey(b *testing.B, s *sqlstore.Store, v []byte) {
	s.BeginTurn()
	if err := s.Put("k", v); err != nil {
		b.Fatal(err)
	}
	if err := s.EndTurn(true); err != nil {
		b.Fatal(err)
	}
	if _, err := s.CommitBatch(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkNewObject: what a brand-new object's first write costs the
// store (a database file from the template, a connection opened on it,
// one key written and committed to the WAL; closing is not timed), next to
// the floor of any object's connection: opening and closing an in-memory
// SQLite database. cpu-µs/op is the process's CPU time (user and system)
// over the timed part: the wall time of the first includes the disk (an
// fdatasync, and file creation on a filesystem that may be slow to
// allocate inodes, bench/README.md), the CPU time less so.
func BenchmarkNewObject(b *testing.B) {
	b.Run("sqlite-open-close-memory", func(b *testing.B) {
		var cpu time.Duration
		for b.Loop() {
			c0 := processCPU(b)
			c, err := sqlite3.Open(":memory:")
			if err != nil {
				b.Fatal(err)
			}
			if err := c.Close(); err != nil {
				b.Fatal(err)
			}
			cpu += processCPU(b) - c0
		}
		b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
	})
	b.Run("store-first-write", func(b *testing.B) {
		dir := b.TempDir()
		tmpl, err := sqlstore.NewTemplate(dir, "")
		if err != nil {
			b.Fatal(err)
		}
		cfg := &sqlstore.Config{Template: tmpl, Dirs: &sqlstore.DirCache{}}
		v := []byte("value")
		var cpu time.Duration
		i := 0
		for b.Loop() {
			i++
			c0 := processCPU(b)
			s := sqlstore.New(cfg, filepath.Join(dir, fmt.Sprintf("o%d.sqlite", i)))
			commitOneKey(b, s, v)
			cpu += processCPU(b) - c0
			b.StopTimer() // closing checkpoints and syncs: eviction's cost, not creation's
			if err := s.Close(); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
	})
}

// processCPU returns the user and system CPU time the process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
