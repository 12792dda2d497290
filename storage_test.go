package durable_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/durableobjects/durable"
)

// scriptObject runs, as one event, a Go function a test names: the test
// states what a handler does right where it checks the outcome.
type scriptObject struct {
	st      *durable.State
	scripts map[string]script
	cursor  *durable.Cursor // kept from one event to the next
}

type script func(o *scriptObject, s *durable.Storage) (any, error)

func (o *scriptObject) Do(ctx context.Context, name string) (any, error) {
	f := o.scripts[name]
	if f == nil {
		return nil, fmt.Errorf("no script %q", name)
	}
	return f(o, o.st.Storage())
}

// Alarm lets scripts set alarms; the tests set them far in the future.
func (o *scriptObject) Alarm(ctx context.Context, info durable.AlarmInfo) error { return nil }

// newScriptHarness opens a runtime with the class "scripts" running scripts.
func newScriptHarness(t *testing.T, scripts map[string]script) (*harness, *durable.Namespace) {
	t.Helper()
	var ns *durable.Namespace
	h := newHarness(t, "", func(rt *durable.Runtime) {
		var err error
		ns, err = rt.Register("scripts", func(st *durable.State) any {
			return &scriptObject{st: st, scripts: scripts}
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	return h, ns
}

// run runs a script on stub and decodes its result.
func run[R any](t *testing.T, stub *durable.Stub, name string) R {
	t.Helper()
	r, err := durable.Call[R](context.Background(), stub, "Do", name)
	if err != nil {
		t.Fatalf("script %s: %v", name, err)
	}
	return r
}

// runErr runs a script and returns its error.
func runErr(stub *durable.Stub, name string) error {
	_, err := durable.Call[any](context.Background(), stub, "Do", name)
	return err
}

// evict drops every idle object from memory, so the next event reads what
// was committed to its file.
func evict(t *testing.T, h *harness) {
	t.Helper()
	// An object whose reply just arrived may still be finishing its batch,
	// so look again until it is idle.
	waitFor(t, "objects evicted", func() bool {
		h.clock.Advance(time.Hour)
		durable.EvictIdle(h.rt)
		return durable.ActiveObjects(h.rt) == 0
	})
}

func fileExists(t *testing.T, h *harness, id durable.ID) bool {
	t.Helper()
	_, err := os.Stat(durable.ObjectFile(h.rt, id))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return err == nil
}

func listKeys(s *durable.Storage, opts durable.ListOptions) ([]string, error) {
	es, err := s.List(opts)
	keys := []string{}
	for _, e := range es {
		keys = append(keys, e.Key)
	}
	return keys, err
}

func TestStorageKV(t *testing.T) {
	type user struct {
		Name string
		Age  int
	}
	h, ns := newScriptHarness(t, map[string]script{
		"write": func(o *scriptObject, s *durable.Storage) (any, error) {
			if err := s.Put("a", []byte("1")); err != nil {
				return nil, err
			}
			err := s.PutMany(map[string][]byte{"b": []byte("2"), "": []byte("empty key"), "nil": nil, "empty": {}, "日本": []byte("3"), "é": []byte("4"), "z": []byte("5")})
			if err != nil {
				return nil, err
			}
			return nil, durable.Put(s, "user", user{"ann", 30})
		},
		"read": func(o *scriptObject, s *durable.Storage) (any, error) {
			out := map[string]any{}
			for _, k := range []string{"a", "", "nil", "empty", "missing"} {
				v, ok, err := s.Get(k)
				if err != nil {
					return nil, err
				}
				out["get "+k] = fmt.Sprintf("%q %v", v, ok)
			}
			m, err := s.GetMany([]string{"a", "b", "missing", "nil"})
			if err != nil {
				return nil, err
			}
			out["getmany"] = fmt.Sprintf("%q", m)
			u, ok, err := durable.Get[user](s, "user")
			if err != nil {
				return nil, err
			}
			out["typed"] = fmt.Sprint(u, ok)
			for name, opts := range map[string]durable.ListOptions{
				"all":         {},
				"range":       {Start: "b", End: "z"},
				"after":       {StartAfter: "nil"},
				"reverse":     {Reverse: true, Limit: 3},
				"prefix":      {Prefix: "e"},
				"utf8 prefix": {Prefix: "日"},
			} {
				keys, err := listKeys(s, opts)
				if err != nil {
					return nil, err
				}
				out["list "+name] = fmt.Sprintf("%q", keys)
			}
			return out, nil
		},
		"delete": func(o *scriptObject, s *durable.Storage) (any, error) {
			d1, err := s.Delete("a")
			if err != nil {
				return nil, err
			}
			d2, err := s.Delete("a")
			if err != nil {
				return nil, err
			}
			n, err := s.DeleteMany([]string{"b", "missing", "nil", "b"})
			return fmt.Sprint(d1, d2, n), err
		},
	})
	stub := ns.GetByName("kv")
	run[any](t, stub, "write")
	evict(t, h)
	got := run[map[string]string](t, stub, "read")
	want := map[string]string{
		"get a":            `"1" true`,
		"get ":             `"empty key" true`,
		"get nil":          `"" true`,
		"get empty":        `"" true`,
		"get missing":      `"" false`,
		"getmany":          `map["a":"1" "b":"2" "nil":""]`,
		"typed":            "{ann 30} true",
		"list all":         `["" "a" "b" "empty" "nil" "user" "z" "é" "日本"]`,
		"list range":       `["b" "empty" "nil" "user"]`,
		"list after":       `["user" "z" "é" "日本"]`,
		"list reverse":     `["日本" "é" "z"]`,
		"list prefix":      `["empty"]`,
		"list utf8 prefix": `["日本"]`,
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %s, want %s", k, got[k], w)
		}
	}
	if got := run[string](t, stub, "delete"); got != "true false 2" {
		t.Errorf("Delete, Delete again, DeleteMany = %s, want true false 2", got)
	}
	evict(t, h)
	got = run[map[string]string](t, stub, "read")
	if w := `["" "empty" "user" "z" "é" "日本"]`; got["list all"] != w {
		t.Errorf("keys after deletes = %s, want %s", got["list all"], w)
	}
}

func TestStorageLimits(t *testing.T) {
	keys := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprint("key", i)
		}
		return out
	}
	entries := func(n int) map[string][]byte {
		m := map[string][]byte{}
		for _, k := range keys(n) {
			m[k] = []byte("v")
		}
		return m
	}
	tests := []struct {
		name string
		run  func(s *durable.Storage) error
		want error // nil: accepted
	}{
		{"key at limit", func(s *durable.Storage) error { return s.Put(strings.Repeat("k", durable.MaxKeySize), []byte("v")) }, nil},
		{"key past limit", func(s *durable.Storage) error { return s.Put(strings.Repeat("k", durable.MaxKeySize+1), []byte("v")) }, durable.ErrKeyTooLarge},
		{"get key past limit", func(s *durable.Storage) error {
			_, _, err := s.Get(strings.Repeat("k", durable.MaxKeySize+1))
			return err
		}, durable.ErrKeyTooLarge},
		{"value at limit", func(s *durable.Storage) error { return s.Put("big", make([]byte, durable.MaxValueSize)) }, nil},
		{"value past limit", func(s *durable.Storage) error { return s.Put("big", make([]byte, durable.MaxValueSize+1)) }, durable.ErrValueTooLarge},
		{"both at limit", func(s *durable.Storage) error {
			return s.Put(strings.Repeat("b", durable.MaxKeySize), make([]byte, durable.MaxValueSize))
		}, nil},
		{"put 128", func(s *durable.Storage) error { return s.PutMany(entries(durable.MaxBatchKeys)) }, nil},
		{"put 129", func(s *durable.Storage) error { return s.PutMany(entries(durable.MaxBatchKeys + 1)) }, durable.ErrTooManyKeys},
		{"get 128", func(s *durable.Storage) error { _, err := s.GetMany(keys(durable.MaxBatchKeys)); return err }, nil},
		{"get 129", func(s *durable.Storage) error { _, err := s.GetMany(keys(durable.MaxBatchKeys + 1)); return err }, durable.ErrTooManyKeys},
		{"delete 129", func(s *durable.Storage) error { _, err := s.DeleteMany(keys(durable.MaxBatchKeys + 1)); return err }, durable.ErrTooManyKeys},
		{"start and startAfter", func(s *durable.Storage) error {
			_, err := s.List(durable.ListOptions{Start: "a", StartAfter: "b"})
			return err
		}, durable.ErrInvalidList},
		{"negative limit", func(s *durable.Storage) error { _, err := s.List(durable.ListOptions{Limit: -1}); return err }, durable.ErrInvalidList},
		{"SQL of 100,001 bytes", func(s *durable.Storage) error {
			_, err := s.Exec("SELECT '" + strings.Repeat("x", 100_001-len("SELECT ''")) + "'")
			return err
		}, durable.ErrSQLNotAllowed},
	}
	scripts := map[string]script{
		"count": func(o *scriptObject, s *durable.Storage) (any, error) {
			keys, err := listKeys(s, durable.ListOptions{})
			return len(keys), err
		},
		"big": func(o *scriptObject, s *durable.Storage) (any, error) {
			v, _, err := s.Get("big")
			return len(v), err
		},
	}
	for _, tt := range tests {
		scripts[tt.name] = func(o *scriptObject, s *durable.Storage) (any, error) { return nil, tt.run(s) }
	}
	h, ns := newScriptHarness(t, scripts)
	stub := ns.GetByName("limits")
	wantKeys := 0
	for _, tt := range tests {
		err := runErr(stub, tt.name)
		if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
		}
		switch tt.name {
		case "key at limit", "value at limit", "both at limit":
			wantKeys++
		case "put 128":
			wantKeys += durable.MaxBatchKeys
		}
		// A refused call changed nothing.
		if got := run[int](t, stub, "count"); got != wantKeys {
			t.Fatalf("after %q: %d keys, want %d", tt.name, got, wantKeys)
		}
	}
	evict(t, h)
	if got := run[int](t, stub, "count"); got != wantKeys {
		t.Errorf("after eviction: %d keys, want %d", got, wantKeys)
	}
	if got := run[int](t, stub, "big"); got != durable.MaxValueSize {
		t.Errorf("the 2 MiB value is %d bytes after a refused larger put", got)
	}
}

func TestStorageSQL(t *testing.T) {
	h, ns := newScriptHarness(t, map[string]script{
		"setup": func(o *scriptObject, s *durable.Storage) (any, error) {
			cur, err := s.Exec(`CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, data BLOB);
				CREATE TABLE log (msg TEXT);
				CREATE TRIGGER users_log AFTER INSERT ON users BEGIN INSERT INTO log VALUES (new.name); END;
				INSERT INTO users (name, data) VALUES (?, ?), ('bob', NULL)`, "ann", []byte{1, 2})
			if err != nil {
				return nil, err
			}
			return cur.RowsWritten(), nil // two users, two log rows
		},
		"query": func(o *scriptObject, s *durable.Storage) (any, error) {
			out := map[string]any{}
			cur, err := s.Exec("SELECT id, name, data FROM users ORDER BY id")
			if err != nil {
				return nil, err
			}
			out["columns"] = cur.Columns()
			var names []string
			for cur.Next() {
				var id int64
				var name string
				var data []byte
				if err := cur.Scan(&id, &name, &data); err != nil {
					return nil, err
				}
				names = append(names, fmt.Sprintf("%d:%s:%v", id, name, data))
			}
			out["rows"] = names
			out["rowsRead"] = cur.RowsRead() >= 2
			var n int
			cur, _ = s.Exec("SELECT count(*) FROM log")
			if err := cur.One(&n); err != nil {
				return nil, err
			}
			out["log"] = n
			cur, _ = s.Exec("SELECT 1 WHERE 0")
			out["none"] = errors.Is(cur.One(new(int)), durable.ErrNoRows)
			cur, _ = s.Exec("SELECT id FROM users")
			out["many"] = errors.Is(cur.One(new(int)), durable.ErrManyRows)
			cur, _ = s.Exec("SELECT 1 a, 2 a")
			out["dup"] = cur.Columns()
			rows, err := cur.All()
			out["dupRows"] = fmt.Sprint(rows, err)
			cur, _ = s.Exec("UPDATE users SET name = upper(name)")
			out["updated"] = cur.RowsWritten()
			return out, nil
		},
		"size": func(o *scriptObject, s *durable.Storage) (any, error) {
			before, err := s.DatabaseSize()
			if err != nil {
				return nil, err
			}
			for range 100 {
				if _, err := s.Exec("INSERT INTO log VALUES (?)", strings.Repeat("x", 1000)); err != nil {
					return nil, err
				}
			}
			after, err := s.DatabaseSize()
			return []int64{before, after}, err
		},
		"bad argument": func(o *scriptObject, s *durable.Storage) (any, error) {
			_, err := s.Exec("INSERT INTO log VALUES (?)", struct{}{})
			return nil, err
		},
	})
	stub := ns.GetByName("sql")
	if got := run[int](t, stub, "setup"); got != 4 {
		t.Errorf("RowsWritten of 2 inserts firing 2 trigger inserts = %d, want 4", got)
	}
	evict(t, h)
	got := run[map[string]any](t, stub, "query")
	want := map[string]any{
		"columns":  []any{"id", "name", "data"},
		"rows":     []any{"1:ann:[1 2]", "2:bob:[]"},
		"rowsRead": true,
		"log":      2.0,
		"none":     true,
		"many":     true,
		"dup":      []any{"a", "a"},
		"dupRows":  "[[1 2]] <nil>",
		"updated":  2.0,
	}
	for k, w := range want {
		if !reflect.DeepEqual(got[k], w) {
			t.Errorf("%s = %#v, want %#v", k, got[k], w)
		}
	}
	if sizes := run[[]int64](t, stub, "size"); sizes[0] <= 0 || sizes[1] <= sizes[0] {
		t.Errorf("DatabaseSize before and after 100 KB of inserts: %v", sizes)
	}
	err := runErr(stub, "bad argument")
	if err == nil || !strings.Contains(err.Error(), "struct {}") {
		t.Errorf("unsupported argument: %v, want an error naming its type", err)
	}
}

func TestStorageSQLAuthorizer(t *testing.T) {
	refused := []string{
		"SELECT * FROM _durable_kv",
		"SELECT * FROM _DURABLE_KV",
		"DELETE FROM _durable_meta",
		"DROP TABLE _durable_kv",
		"CREATE TABLE _durable_mine (a)",
		"ALTER TABLE t RENAME TO _durable_t",
		"ATTACH ':memory:' AS x",
		"BEGIN",
		"COMMIT",
		"SAVEPOINT s",
		"PRAGMA journal_mode = DELETE",
		"PRAGMA synchronous = OFF",
		"PRAGMA page_size = 8192",
		"PRAGMA table_info(_durable_kv)",
	}
	allowed := []string{"PRAGMA foreign_keys = ON", "PRAGMA table_list", "PRAGMA table_info(t)", "PRAGMA data_version"}
	scripts := map[string]script{
		"setup": func(o *scriptObject, s *durable.Storage) (any, error) {
			if err := s.Put("k", []byte("v")); err != nil {
				return nil, err
			}
			_, err := s.Exec("CREATE TABLE t (a); INSERT INTO t VALUES (1)")
			return nil, err
		},
		"state": func(o *scriptObject, s *durable.Storage) (any, error) {
			keys, err := listKeys(s, durable.ListOptions{})
			if err != nil {
				return nil, err
			}
			cur, err := s.Exec("SELECT group_concat(a) FROM t")
			if err != nil {
				return nil, err
			}
			var a string
			err = cur.One(&a)
			return fmt.Sprint(keys, " ", a), err
		},
	}
	for _, q := range append(slices.Clone(refused), allowed...) {
		scripts[q] = func(o *scriptObject, s *durable.Storage) (any, error) {
			cur, err := s.Exec(q)
			if err != nil {
				return nil, err
			}
			_, err = cur.All()
			return nil, err
		}
	}
	_, ns := newScriptHarness(t, scripts)
	stub := ns.GetByName("auth")
	run[any](t, stub, "setup")
	for _, q := range refused {
		err := runErr(stub, q)
		if !errors.Is(err, durable.ErrSQLNotAllowed) {
			t.Errorf("%q: err = %v, want ErrSQLNotAllowed", q, err)
		}
	}
	for _, q := range allowed {
		if err := runErr(stub, q); err != nil {
			t.Errorf("%q: %v", q, err)
		}
	}
	if got := run[string](t, stub, "state"); got != "[k] 1" {
		t.Errorf("after the refused statements: %q, want the data as it was", got)
	}
}

// TestHandlerErrorKeepsWrites: a handler that writes and then returns an
// error keeps its writes (the documented semantics: only a panic, or
// Storage.Transaction, undoes writes).
func TestHandlerErrorKeepsWrites(t *testing.T) {
	errHandler := errors.New("handler failed")
	h, ns := newScriptHarness(t, map[string]script{
		"write then fail": func(o *scriptObject, s *durable.Storage) (any, error) {
			if err := s.Put("k", []byte("kept")); err != nil {
				return nil, err
			}
			if _, err := s.Exec("CREATE TABLE t (a); INSERT INTO t VALUES ('kept')"); err != nil {
				return nil, err
			}
			return nil, errHandler
		},
		"read": func(o *scriptObject, s *durable.Storage) (any, error) {
			v, _, err := s.Get("k")
			if err != nil {
				return nil, err
			}
			cur, err := s.Exec("SELECT a FROM t")
			if err != nil {
				return nil, err
			}
			var a string
			err = cur.One(&a)
			return string(v) + " " + a, err
		},
	})
	stub := ns.GetByName("fail")
	if err := runErr(stub, "write then fail"); !errors.Is(err, errHandler) {
		t.Fatalf("err = %v, want the handler's error", err)
	}
	evict(t, h)
	if got := run[string](t, stub, "read"); got != "kept kept" {
		t.Errorf("after a handler error: %q, want the writes kept", got)
	}
}

// TestHandlerPanicDiscardsWrites: a panic undoes every write of the event,
// KV, SQL, alarm and DeleteAll alike.
func TestHandlerPanicDiscardsWrites(t *testing.T) {
	alarmAt := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
	h, ns := newScriptHarness(t, map[string]script{
		"setup": func(o *scriptObject, s *durable.Storage) (any, error) {
			if err := s.Put("k", []byte("before")); err != nil {
				return nil, err
			}
			_, err := s.Exec("CREATE TABLE t (a); INSERT INTO t VALUES ('before')")
			return nil, err
		},
		"write then panic": func(o *scriptObject, s *durable.Storage) (any, error) {
			s.Put("k", []byte("after"))
			s.Put("new", []byte("after"))
			if _, err := s.Exec("INSERT INTO t VALUES ('after'); CREATE TABLE u (b)"); err != nil {
				return nil, err
			}
			if err := s.SetAlarm(alarmAt); err != nil {
				return nil, err
			}
			panic("boom")
		},
		"delete all then panic": func(o *scriptObject, s *durable.Storage) (any, error) {
			if err := s.DeleteAll(); err != nil {
				return nil, err
			}
			panic("boom")
		},
		"panic in transaction": func(o *scriptObject, s *durable.Storage) (any, error) {
			s.Put("outside", nil)
			return nil, s.Transaction(func() error {
				s.Put("inside", nil)
				panic("boom")
			})
		},
		"state": func(o *scriptObject, s *durable.Storage) (any, error) {
			keys, err := listKeys(s, durable.ListOptions{})
			if err != nil {
				return nil, err
			}
			v, _, _ := s.Get("k")
			cur, err := s.Exec("SELECT group_concat(a) FROM t")
			if err != nil {
				return nil, err
			}
			var rows string
			if err := cur.One(&rows); err != nil {
				return nil, err
			}
			_, uErr := s.Exec("SELECT * FROM u")
			_, alarm, err := s.GetAlarm()
			return fmt.Sprintf("keys=%q k=%s t=%s u=%v alarm=%v", keys, v, rows, uErr != nil, alarm), err
		},
	})
	stub := ns.GetByName("panic")
	run[any](t, stub, "setup")
	const want = `keys=["k"] k=before t=before u=true alarm=false`
	for _, name := range []string{"write then panic", "delete all then panic", "panic in transaction"} {
		err := runErr(stub, name)
		var pe *durable.PanicError
		if !errors.As(err, &pe) {
			t.Fatalf("%s: err = %v, want a PanicError", name, err)
		}
		if got := run[string](t, stub, "state"); got != want {
			t.Errorf("after %s: %s\nwant %s", name, got, want)
		}
	}
	evict(t, h)
	if got := run[string](t, stub, "state"); got != want {
		t.Errorf("after eviction: %s\nwant %s", got, want)
	}
}

func TestStorageTransaction(t *testing.T) {
	errTx := errors.New("roll back")
	h, ns := newScriptHarness(t, map[string]script{
		"transactions": func(o *scriptObject, s *durable.Storage) (any, error) {
			var out []string
			note := func(what string, err error) { out = append(out, fmt.Sprintf("%s:%v", what, err)) }
			s.Put("outer", nil)
			if _, err := s.Exec("CREATE TABLE t (a)"); err != nil {
				return nil, err
			}
			// An error rolls back, KV and SQL.
			note("error", s.Transaction(func() error {
				s.Put("tx-error", nil)
				s.Exec("INSERT INTO t VALUES ('tx-error')")
				// Reads inside see the transaction's writes.
				if _, ok, _ := s.Get("tx-error"); !ok {
					return errors.New("own write not visible")
				}
				return errTx
			}))
			// A panic rolls back, and the handler may recover from it.
			func() {
				defer func() { note("panic", fmt.Errorf("%v", recover())) }()
				s.Transaction(func() error {
					s.Put("tx-panic", nil)
					s.Exec("INSERT INTO t VALUES ('tx-panic')")
					panic("boom")
				})
			}()
			// Success keeps.
			note("ok", s.Transaction(func() error {
				s.Exec("INSERT INTO t VALUES ('tx-ok')")
				return s.Put("tx-ok", nil)
			}))
			// Nested: the inner one fails alone; then an outer one fails whole.
			note("nested", s.Transaction(func() error {
				s.Put("nested-outer", nil)
				note("inner", s.Transaction(func() error { s.Put("nested-inner", nil); return errTx }))
				return nil
			}))
			note("nested-fail", s.Transaction(func() error {
				s.Transaction(func() error { return s.Put("lost-inner", nil) })
				s.Put("lost-outer", nil)
				return errTx
			}))
			return out, nil
		},
		"state": func(o *scriptObject, s *durable.Storage) (any, error) {
			keys, err := listKeys(s, durable.ListOptions{})
			if err != nil {
				return nil, err
			}
			cur, err := s.Exec("SELECT group_concat(a) FROM t")
			if err != nil {
				return nil, err
			}
			var rows string
			err = cur.One(&rows)
			return fmt.Sprintf("%q %s", keys, rows), err
		},
	})
	stub := ns.GetByName("tx")
	got := run[[]string](t, stub, "transactions")
	want := []string{"error:roll back", "panic:boom", "ok:<nil>", "inner:roll back", "nested:<nil>", "nested-fail:roll back"}
	if !slices.Equal(got, want) {
		t.Errorf("Transaction results = %q, want %q", got, want)
	}
	evict(t, h)
	if got, want := run[string](t, stub, "state"), `["nested-outer" "outer" "tx-ok"] tx-ok`; got != want {
		t.Errorf("committed = %s, want %s", got, want)
	}
}

// TestNoFileUntilFirstWriteEndToEnd: an object that only reads (KV, alarm,
// SQL, in a Transaction or not) gets no database file.
func TestNoFileUntilFirstWriteEndToEnd(t *testing.T) {
	h, ns := newScriptHarness(t, map[string]script{
		"reads": func(o *scriptObject, s *durable.Storage) (any, error) {
			var errs []error
			add := func(err error) { errs = append(errs, err) }
			_, _, err := s.Get("k")
			add(err)
			_, err = s.GetMany([]string{"a", "b"})
			add(err)
			_, err = s.List(durable.ListOptions{Prefix: "x"})
			add(err)
			_, _, err = s.GetAlarm()
			add(err)
			add(s.DeleteAlarm())
			_, err = s.Delete("k")
			add(err)
			_, err = s.DeleteMany([]string{"k"})
			add(err)
			add(s.DeleteAll())
			size, err := s.DatabaseSize()
			add(err)
			if size != 12288 { // the empty template, reported though there is no file
				add(fmt.Errorf("DatabaseSize = %d", size))
			}
			cur, err := s.Exec("SELECT 1 + ?", 1)
			add(err)
			if err == nil {
				var n int
				add(cur.One(&n))
			}
			_, err = s.Exec("PRAGMA table_list")
			add(err)
			add(s.Transaction(func() error {
				_, _, err := s.Get("k")
				if err == nil {
					_, err = s.Exec("SELECT 1")
				}
				return err
			}))
			return nil, errors.Join(errs...)
		},
		"select users": func(o *scriptObject, s *durable.Storage) (any, error) {
			_, err := s.Exec("SELECT * FROM users")
			return nil, err
		},
		"write": func(o *scriptObject, s *durable.Storage) (any, error) {
			return nil, s.Put("k", []byte("v"))
		},
	})
	id := ns.IDFromName("virgin")
	stub := ns.Get(id)
	run[any](t, stub, "reads")
	err := runErr(stub, "select users")
	var pe *durable.PanicError
	if err == nil || errors.As(err, &pe) || !strings.Contains(err.Error(), "no such table: users") {
		t.Errorf("SELECT from a user table of a virgin object: %v, want a \"no such table: users\" error", err)
	}
	run[any](t, stub, "reads") // the object still works
	if fileExists(t, h, id) {
		t.Fatal("an object that only read has a database file")
	}
	evict(t, h)
	run[any](t, stub, "reads")
	if fileExists(t, h, id) {
		t.Fatal("an object that only read has a database file after eviction")
	}
	run[any](t, stub, "write")
	if !fileExists(t, h, id) {
		t.Fatal("no database file after the first write")
	}
}

func TestCursorClosedAfterEvent(t *testing.T) {
	_, ns := newScriptHarness(t, map[string]script{
		"open": func(o *scriptObject, s *durable.Storage) (any, error) {
			var err error
			o.cursor, err = s.Exec("SELECT 1 UNION ALL SELECT 2")
			if err == nil && !o.cursor.Next() {
				err = errors.New("no first row")
			}
			return nil, err
		},
		"use": func(o *scriptObject, s *durable.Storage) (any, error) {
			if o.cursor.Next() {
				return nil, errors.New("Next returned a row of an ended event")
			}
			if err := o.cursor.Err(); !errors.Is(err, durable.ErrCursorClosed) {
				return nil, fmt.Errorf("Err = %v", err)
			}
			if _, err := o.cursor.All(); !errors.Is(err, durable.ErrCursorClosed) {
				return nil, fmt.Errorf("All = %v", err)
			}
			if err := o.cursor.One(new(int)); !errors.Is(err, durable.ErrCursorClosed) {
				return nil, fmt.Errorf("One = %v", err)
			}
			return nil, nil
		},
	})
	stub := ns.GetByName("cursor")
	run[any](t, stub, "open")
	run[any](t, stub, "use")
}

func TestDeleteAllEndToEnd(t *testing.T) {
	alarmAt := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
	h, ns := newScriptHarness(t, map[string]script{
		"setup": func(o *scriptObject, s *durable.Storage) (any, error) {
			if err := s.PutMany(map[string][]byte{"a": nil, "b": []byte("2")}); err != nil {
				return nil, err
			}
			if _, err := s.Exec(`CREATE TABLE parent (id INTEGER PRIMARY KEY);
				CREATE TABLE child (p INTEGER REFERENCES parent (id));
				CREATE INDEX child_p ON child (p);
				CREATE VIEW v AS SELECT * FROM child;
				CREATE TRIGGER tr AFTER INSERT ON parent BEGIN INSERT INTO child VALUES (new.id); END;
				INSERT INTO parent VALUES (1)`); err != nil {
				return nil, err
			}
			return nil, s.SetAlarm(alarmAt)
		},
		"delete all": func(o *scriptObject, s *durable.Storage) (any, error) {
			return nil, s.DeleteAll()
		},
		"state": func(o *scriptObject, s *durable.Storage) (any, error) {
			keys, err := listKeys(s, durable.ListOptions{})
			if err != nil {
				return nil, err
			}
			cur, err := s.Exec(`SELECT count(*) FROM sqlite_schema WHERE name NOT LIKE '\_durable\_%' ESCAPE '\' AND name NOT LIKE 'sqlite\_%' ESCAPE '\'`)
			if err != nil {
				return nil, err
			}
			var n int
			if err := cur.One(&n); err != nil {
				return nil, err
			}
			at, ok, err := s.GetAlarm()
			return fmt.Sprintf("keys=%q schema=%d alarm=%v %v", keys, n, ok, ok && at.Equal(alarmAt)), err
		},
	})
	stub := ns.GetByName("deleteall")
	run[any](t, stub, "setup")
	if got, want := run[string](t, stub, "state"), `keys=["a" "b"] schema=5 alarm=true true`; got != want {
		t.Fatalf("before DeleteAll: %s, want %s", got, want)
	}
	run[any](t, stub, "delete all")
	const want = `keys=[] schema=0 alarm=false false`
	if got := run[string](t, stub, "state"); got != want {
		t.Errorf("after DeleteAll: %s, want %s", got, want)
	}
	evict(t, h)
	if got := run[string](t, stub, "state"); got != want {
		t.Errorf("after DeleteAll and eviction: %s, want %s", got, want)
	}
}

func TestReadsSeeOwnWritesEndToEnd(t *testing.T) {
	_, ns := newScriptHarness(t, map[string]script{
		"rw": func(o *scriptObject, s *durable.Storage) (any, error) {
			if err := s.Put("k", []byte("v1")); err != nil {
				return nil, err
			}
			v1, _, _ := s.Get("k")
			s.Put("k", []byte("v2"))
			v2, _, _ := s.Get("k")
			s.Exec("CREATE TABLE t (a); INSERT INTO t VALUES (1), (2)")
			cur, err := s.Exec("SELECT count(*) FROM t")
			if err != nil {
				return nil, err
			}
			var n int
			if err := cur.One(&n); err != nil {
				return nil, err
			}
			return fmt.Sprintf("%s %s %d", v1, v2, n), nil
		},
	})
	if got := run[string](t, ns.GetByName("rw"), "rw"); got != "v1 v2 2" {
		t.Errorf("reads in the event = %q, want \"v1 v2 2\"", got)
	}
}

// TestStorageBinaryKeysEndToEnd: keys are bytes; 0xff-suffixed prefixes and
// non-UTF-8 keys list in byte order.
func TestStorageBinaryKeysEndToEnd(t *testing.T) {
	keys := []string{"p", "p\x00", "p\xfe", "p\xff", "p\xff\x00", "p\xff\xff", "q"}
	_, ns := newScriptHarness(t, map[string]script{
		"run": func(o *scriptObject, s *durable.Storage) (any, error) {
			for _, k := range keys {
				if err := s.Put(k, []byte(k)); err != nil {
					return nil, err
				}
			}
			out := map[string]string{}
			for _, p := range []string{"p\xff", "p"} {
				es, err := s.List(durable.ListOptions{Prefix: p})
				if err != nil {
					return nil, err
				}
				var b strings.Builder
				for _, e := range es {
					fmt.Fprintf(&b, "%x,", e.Key)
				}
				out[fmt.Sprintf("%x", p)] = b.String()
			}
			return out, nil
		},
	})
	got := run[map[string]string](t, ns.GetByName("bin"), "run")
	want := map[string]string{"70ff": "70ff,70ff00,70ffff,", "70": "70,7000,70fe,70ff,70ff00,70ffff,"}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("List(prefix %s) = %s, want %s", k, got[k], w)
		}
	}
}
