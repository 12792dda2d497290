package sqlstore_test

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/durableobjects/durable/internal/sqlstore"
)

// withUsers returns a store with a committed table users(id, name) of n rows.
func withUsers(t *testing.T, n int) *testStore {
	ts := newTestStore(t)
	ts.event(func(s *sqlstore.Store) {
		mustExec(t, s, "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
		for i := 1; i <= n; i++ {
			mustExec(t, s, "INSERT INTO users (id, name) VALUES (?, ?)", i, fmt.Sprint("user", i))
		}
	})
	return ts
}

func TestCursorOne(t *testing.T) {
	ts := withUsers(t, 3)
	tests := []struct {
		query   string
		args    []any
		wantErr error
		want    string
	}{
		{"SELECT name FROM users WHERE id = ?", []any{2}, nil, "user2"},
		{"SELECT name FROM users WHERE id = ?", []any{99}, sqlstore.ErrNoRows, ""},
		{"SELECT name FROM users WHERE id <= 2 ORDER BY id", nil, sqlstore.ErrManyRows, ""},
		{"SELECT name FROM users ORDER BY id", nil, sqlstore.ErrManyRows, ""},
		{"SELECT 'x' WHERE 0", nil, sqlstore.ErrNoRows, ""},
		{"SELECT 'only'", nil, nil, "only"},
	}
	ts.event(func(s *sqlstore.Store) {
		for _, tt := range tests {
			cur, err := s.Exec(tt.query, tt.args...)
			if err != nil {
				t.Fatalf("Exec(%q): %v", tt.query, err)
			}
			var got string
			err = cur.One(&got)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Errorf("Exec(%q, %v).One = %v, want %v", tt.query, tt.args, err, tt.wantErr)
			}
			// What One leaves in dest when it fails is unspecified.
			if tt.wantErr == nil && got != tt.want {
				t.Errorf("Exec(%q, %v).One scanned %q, want %q", tt.query, tt.args, got, tt.want)
			}
		}
		// One takes what is left: after reading one of two rows, One succeeds.
		cur, err := s.Exec("SELECT id FROM users WHERE id <= 2 ORDER BY id")
		if err != nil {
			t.Fatal(err)
		}
		cur.Next()
		var id int
		if err := cur.One(&id); err != nil || id != 2 {
			t.Errorf("One after Next = %d, %v; want the remaining row 2", id, err)
		}
	})
}

func TestCursorAllNextScanColumns(t *testing.T) {
	ts := withUsers(t, 5)
	ts.event(func(s *sqlstore.Store) {
		// All, with every value type.
		cur, err := s.Exec("SELECT 1, 2.5, 'text', x'00ff', NULL, ''")
		if err != nil {
			t.Fatal(err)
		}
		rows, err := cur.All()
		want := [][]any{{int64(1), 2.5, "text", []byte{0, 0xff}, nil, ""}}
		if err != nil || !reflect.DeepEqual(rows, want) {
			t.Errorf("All = %#v, %v; want %#v", rows, err, want)
		}

		// Next and Scan over every row, then All is empty.
		cur, err = s.Exec("SELECT id, name FROM users ORDER BY id")
		if err != nil {
			t.Fatal(err)
		}
		var ids []int64
		var names []string
		for cur.Next() {
			var id int64
			var name string
			if err := cur.Scan(&id, &name); err != nil {
				t.Fatal(err)
			}
			ids, names = append(ids, id), append(names, name)
		}
		if err := cur.Err(); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ids, []int64{1, 2, 3, 4, 5}) || names[4] != "user5" {
			t.Errorf("iteration gave ids %v names %q", ids, names)
		}
		if cur.Next() {
			t.Error("Next after the end returned true")
		}
		if err := cur.Scan(new(int64), new(string)); err == nil {
			t.Error("Scan after the end succeeded")
		}
		if rest, err := cur.All(); len(rest) != 0 || err != nil {
			t.Errorf("All after the end = %v, %v", rest, err)
		}

		// Reading some rows with Next leaves the rest to All.
		cur, err = s.Exec("SELECT id FROM users ORDER BY id")
		if err != nil {
			t.Fatal(err)
		}
		cur.Next()
		cur.Next()
		rest, err := cur.All()
		if err != nil || !reflect.DeepEqual(rest, [][]any{{int64(3)}, {int64(4)}, {int64(5)}}) {
			t.Errorf("All after two Next = %v, %v", rest, err)
		}

		// Scan before Next, and with the wrong number of destinations.
		cur, err = s.Exec("SELECT id, name FROM users ORDER BY id")
		if err != nil {
			t.Fatal(err)
		}
		if err := cur.Scan(new(int64), new(string)); err == nil {
			t.Error("Scan before Next succeeded")
		}
		cur.Next()
		if err := cur.Scan(new(int64)); err == nil {
			t.Error("Scan of a 2-column row into 1 destination succeeded")
		}
		if err := cur.Scan(new(int64), new(time.Time)); err == nil || !strings.Contains(err.Error(), "time.Time") {
			t.Errorf("Scan into *time.Time: %v, want an error naming the type", err)
		}
		if err := cur.Close(); err != nil {
			t.Error(err)
		}
		if cur.Next() {
			t.Error("Next after Close returned true")
		}
	})
}

func TestCursorValuesWithoutRow(t *testing.T) {
	ts := withUsers(t, 2)
	ts.event(func(s *sqlstore.Store) {
		cur, err := s.Exec("SELECT id FROM users ORDER BY id")
		if err != nil {
			t.Fatal(err)
		}
		if v := cur.Values(); v != nil {
			t.Errorf("Values before Next = %v, want nil", v)
		}
		for cur.Next() {
		}
		if v := cur.Values(); v != nil {
			t.Errorf("Values after the last row = %v, want nil", v)
		}
	})
}

func TestCursorColumns(t *testing.T) {
	ts := withUsers(t, 1)
	tests := []struct {
		query string
		want  []string
	}{
		{"SELECT 1 a, 2 a", []string{"a", "a"}},
		{"SELECT 1 AS x, 'y' AS y, NULL AS z", []string{"x", "y", "z"}},
		{"SELECT * FROM users", []string{"id", "name"}},
		{"SELECT name, id FROM users WHERE 0", []string{"name", "id"}}, // no rows, still columns
		{"SELECT u.id, v.id FROM users u, users v", []string{"id", "id"}},
		{"INSERT INTO users (name) VALUES ('c')", []string{}},
		{"INSERT INTO users (name) VALUES ('d') RETURNING id, name", []string{"id", "name"}},
	}
	ts.event(func(s *sqlstore.Store) {
		for _, tt := range tests {
			cur, err := s.Exec(tt.query)
			if err != nil {
				t.Fatalf("Exec(%q): %v", tt.query, err)
			}
			if got := cur.Columns(); !slices.Equal(got, tt.want) {
				t.Errorf("Exec(%q).Columns() = %q, want %q", tt.query, got, tt.want)
			}
			if _, err := cur.All(); err != nil {
				t.Fatal(err)
			}
			if got := cur.Columns(); !slices.Equal(got, tt.want) {
				t.Errorf("Exec(%q).Columns() after All = %q, want %q", tt.query, got, tt.want)
			}
		}
		// Duplicate names keep both values, in order.
		cur, _ := s.Exec("SELECT 1 a, 2 a")
		rows, err := cur.All()
		if err != nil || !reflect.DeepEqual(rows, [][]any{{int64(1), int64(2)}}) {
			t.Errorf("SELECT 1 a, 2 a = %v, %v", rows, err)
		}
	})
}

func TestCursorRowsWritten(t *testing.T) {
	ts := newTestStore(t)
	ts.event(func(s *sqlstore.Store) {
		mustExec(t, s, `CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER);
			CREATE TABLE audit (msg TEXT);
			CREATE TABLE noisy (v INTEGER);
			CREATE TRIGGER noisy_audit AFTER INSERT ON noisy BEGIN
				INSERT INTO audit VALUES ('a'); INSERT INTO audit VALUES ('b');
			END`)
	})
	tests := []struct {
		query string
		want  int64
	}{
		{"INSERT INTO t (v) VALUES (1), (2), (3)", 3},
		{"INSERT INTO t (v) VALUES (10)", 1},
		{"UPDATE t SET v = v + 1 WHERE v < 3", 2},
		{"UPDATE t SET v = v WHERE 0", 0},
		{"DELETE FROM t WHERE v = 10", 1},
		{"SELECT * FROM t", 0},
		{"INSERT INTO noisy VALUES (1)", 3}, // one row and two by the trigger
		{"INSERT INTO t (v) VALUES (7), (8) RETURNING id", 2},
		{"DELETE FROM t RETURNING id", 5},
	}
	ts.event(func(s *sqlstore.Store) {
		for _, tt := range tests {
			cur, err := s.Exec(tt.query)
			if err != nil {
				t.Fatalf("Exec(%q): %v", tt.query, err)
			}
			if _, err := cur.All(); err != nil {
				t.Fatal(err)
			}
			if got := cur.RowsWritten(); got != tt.want {
				t.Errorf("Exec(%q).RowsWritten() = %d, want %d", tt.query, got, tt.want)
			}
		}
	})
	// A cursor's count is its own statement's: writes made by other
	// statements (SQL or KV) while it is open do not count.
	ts.event(func(s *sqlstore.Store) {
		mustExec(t, s, "INSERT INTO t (v) VALUES (1), (2), (3)")
		sel, err := s.Exec("SELECT v FROM t")
		if err != nil {
			t.Fatal(err)
		}
		ins, err := s.Exec("INSERT INTO t (v) VALUES (4), (5) RETURNING v")
		if err != nil {
			t.Fatal(err)
		}
		mustPut(t, s, "k", []byte("v"))
		mustExec(t, s, "UPDATE t SET v = 0")
		if got := sel.RowsWritten(); got != 0 {
			t.Errorf("an open SELECT's RowsWritten = %d after other statements wrote, want 0", got)
		}
		if _, err := sel.All(); err != nil {
			t.Fatal(err)
		}
		if _, err := ins.All(); err != nil {
			t.Fatal(err)
		}
		if got := sel.RowsWritten(); got != 0 {
			t.Errorf("a finished SELECT's RowsWritten = %d, want 0", got)
		}
		if got := ins.RowsWritten(); got != 2 {
			t.Errorf("INSERT of 2 rows, read after other writes: RowsWritten = %d, want 2", got)
		}
	})
	// An INSERT ... RETURNING closed before reading its rows wrote them all.
	ts.event(func(s *sqlstore.Store) {
		cur, err := s.Exec("INSERT INTO t (v) VALUES (1), (2), (3) RETURNING id")
		if err != nil {
			t.Fatal(err)
		}
		if err := cur.Close(); err != nil {
			t.Fatal(err)
		}
		if got := cur.RowsWritten(); got != 3 {
			t.Errorf("INSERT RETURNING of 3 rows closed unread: RowsWritten = %d, want 3", got)
		}
	})
}

func TestCursorRowsRead(t *testing.T) {
	ts := withUsers(t, 10)
	ts.event(func(s *sqlstore.Store) {
		cur, err := s.Exec("SELECT id FROM users ORDER BY id")
		if err != nil {
			t.Fatal(err)
		}
		var last int64
		for i := 1; cur.Next(); i++ {
			got := cur.RowsRead()
			if got < int64(i) || got < last {
				t.Errorf("after %d rows RowsRead = %d (before: %d)", i, got, last)
			}
			last = got
		}
		if got := cur.RowsRead(); got < 10 {
			t.Errorf("after all 10 rows RowsRead = %d", got)
		}
		// A point lookup reads about one row, a filtered scan the table.
		cur, err = s.Exec("SELECT name FROM users WHERE id = 3")
		if err != nil {
			t.Fatal(err)
		}
		cur.All()
		if got := cur.RowsRead(); got != 1 {
			t.Errorf("primary key lookup RowsRead = %d, want 1", got)
		}
		cur, err = s.Exec("SELECT id FROM users WHERE name = 'user3'")
		if err != nil {
			t.Fatal(err)
		}
		cur.All()
		if got := cur.RowsRead(); got < 9 {
			t.Errorf("a full scan returning 1 row of 10: RowsRead = %d, want about 10", got)
		}
	})
	// The same (cached) statement run again counts its own run only, in
	// this event and the next.
	for range 2 {
		ts.event(func(s *sqlstore.Store) {
			for run := 1; run <= 3; run++ {
				cur, err := s.Exec("SELECT id FROM users WHERE name LIKE 'user%'")
				if err != nil {
					t.Fatal(err)
				}
				before := cur.RowsRead() // the first row is fetched already
				cur.All()
				if got := cur.RowsRead(); got != 10 || before > 10 {
					t.Errorf("run %d: RowsRead = %d (%d after the first row), want 10", run, got, before)
				}
			}
		})
	}
}

func TestExecMultipleStatements(t *testing.T) {
	ts := newTestStore(t)
	ts.event(func(s *sqlstore.Store) {
		// Arguments bind to the last statement; the cursor is the last one's.
		rows := mustExec(t, s, "CREATE TABLE t (a, b); INSERT INTO t VALUES (1, 'one'); SELECT a, b FROM t WHERE a = ?", 1)
		if !reflect.DeepEqual(rows, [][]any{{int64(1), "one"}}) {
			t.Errorf("rows = %v", rows)
		}
		mustExec(t, s, "INSERT INTO t VALUES (2, 'two'); INSERT INTO t VALUES (?, ?)", 3, "three")
		if n := queryInt(t, s, "SELECT count(*) FROM t"); n != 3 {
			t.Errorf("count = %d, want 3", n)
		}
		// Earlier statements run to completion even when they return rows.
		rows = mustExec(t, s, "SELECT * FROM t; UPDATE t SET b = upper(b) RETURNING a; SELECT b FROM t ORDER BY a")
		if !reflect.DeepEqual(rows, [][]any{{"ONE"}, {"TWO"}, {"THREE"}}) {
			t.Errorf("rows = %v", rows)
		}
		// Trailing semicolons, whitespace and comments are not a statement.
		for _, q := range []string{"SELECT 7;", "SELECT 7 ;\n\t", "SELECT 7; -- done", "SELECT 7; /* done */", "/* c */ SELECT 7"} {
			if n := queryInt(t, s, q); n != 7 {
				t.Errorf("%q = %d", q, n)
			}
		}
		// A parameter in an earlier statement has nothing to bind to.
		if _, err := s.Exec("INSERT INTO t VALUES (?, 'x'); SELECT 1", 9); err == nil {
			t.Error("a parameter in an earlier statement was accepted")
		}
		if n := queryInt(t, s, "SELECT count(*) FROM t WHERE b = 'x'"); n != 0 {
			t.Errorf("the refused statement inserted %d rows", n)
		}
		// Nothing to run.
		for _, q := range []string{"", " ", ";", "-- nothing"} {
			if _, err := s.Exec(q); err == nil {
				t.Errorf("Exec(%q) succeeded", q)
			}
		}
		// Wrong argument counts.
		if _, err := s.Exec("SELECT ?, ?", 1); err == nil {
			t.Error("2 parameters with 1 argument accepted")
		}
		if _, err := s.Exec("SELECT ?", 1, 2); err == nil {
			t.Error("1 parameter with 2 arguments accepted")
		}
	})
}

func TestExecWriteWithoutReadingCursor(t *testing.T) {
	ts := newTestStore(t)
	ts.event(func(s *sqlstore.Store) {
		mustExec(t, s, "CREATE TABLE t (a)")
	})
	ts.event(func(s *sqlstore.Store) {
		for _, q := range []string{
			"INSERT INTO t VALUES (1)",
			"INSERT INTO t VALUES (2), (3) RETURNING a",
			"UPDATE t SET a = a * 10 RETURNING a",
			"DELETE FROM t WHERE a = 30 RETURNING a",
		} {
			if _, err := s.Exec(q); err != nil { // the cursor is dropped unread
				t.Fatalf("Exec(%q): %v", q, err)
			}
		}
	})
	ts.reopen()
	ts.event(func(s *sqlstore.Store) {
		rows := mustExec(t, s, "SELECT a FROM t ORDER BY a")
		if want := [][]any{{int64(10)}, {int64(20)}}; !reflect.DeepEqual(rows, want) {
			t.Errorf("rows = %v, want %v", rows, want)
		}
	})
}

func TestCursorClosedWhenEventEnds(t *testing.T) {
	ts := withUsers(t, 3)
	var cur, done *sqlstore.Cursor
	ts.event(func(s *sqlstore.Store) {
		var err error
		cur, err = s.Exec("SELECT id FROM users ORDER BY id")
		if err != nil {
			t.Fatal(err)
		}
		if !cur.Next() {
			t.Fatal("no first row")
		}
		// A cursor read to its end during the event.
		if done, err = s.Exec("SELECT name FROM users"); err != nil {
			t.Fatal(err)
		}
		if rows, err := done.All(); len(rows) != 3 || err != nil {
			t.Fatalf("All = %v, %v", rows, err)
		}
	})
	if err := done.Err(); !errors.Is(err, sqlstore.ErrCursorClosed) {
		t.Errorf("a cursor read to its end, after its event: Err = %v, want ErrCursorClosed", err)
	}
	if rows, err := done.All(); !errors.Is(err, sqlstore.ErrCursorClosed) {
		t.Errorf("a cursor read to its end, after its event: All = %v, %v; want ErrCursorClosed", rows, err)
	}
	// Outside any event, and in a later event.
	check := func(when string) {
		if cur.Next() {
			t.Errorf("%s: Next returned a row", when)
		}
		if err := cur.Err(); !errors.Is(err, sqlstore.ErrCursorClosed) {
			t.Errorf("%s: Err = %v, want ErrCursorClosed", when, err)
		}
		if err := cur.Scan(new(int64)); !errors.Is(err, sqlstore.ErrCursorClosed) {
			t.Errorf("%s: Scan = %v, want ErrCursorClosed", when, err)
		}
		if rows, err := cur.All(); !errors.Is(err, sqlstore.ErrCursorClosed) {
			t.Errorf("%s: All = %v, %v; want ErrCursorClosed", when, rows, err)
		}
		if err := cur.One(new(int64)); !errors.Is(err, sqlstore.ErrCursorClosed) {
			t.Errorf("%s: One = %v, want ErrCursorClosed", when, err)
		}
		if err := cur.Close(); err != nil {
			t.Errorf("%s: Close = %v, want nil", when, err)
		}
	}
	check("after the event")
	ts.event(func(s *sqlstore.Store) {
		check("in a later event")
		// The statement itself works again.
		if rows := mustExec(t, s, "SELECT id FROM users ORDER BY id"); len(rows) != 3 {
			t.Errorf("re-running the statement gave %d rows", len(rows))
		}
	})
	// Storage outside an event is refused.
	if _, err := ts.s.Exec("SELECT 1"); !errors.Is(err, sqlstore.ErrOutsideEvent) {
		t.Errorf("Exec outside an event: %v, want ErrOutsideEvent", err)
	}
	if _, _, err := ts.s.Get("k"); !errors.Is(err, sqlstore.ErrOutsideEvent) {
		t.Errorf("Get outside an event: %v, want ErrOutsideEvent", err)
	}
	if err := ts.s.Put("k", nil); !errors.Is(err, sqlstore.ErrOutsideEvent) {
		t.Errorf("Put outside an event: %v, want ErrOutsideEvent", err)
	}
}

func TestExecSameStatementClosesFirstCursor(t *testing.T) {
	ts := withUsers(t, 3)
	ts.event(func(s *sqlstore.Store) {
		const q = "SELECT id FROM users ORDER BY id"
		first, err := s.Exec(q)
		if err != nil {
			t.Fatal(err)
		}
		first.Next()
		other, err := s.Exec("SELECT name FROM users ORDER BY id") // a different statement
		if err != nil {
			t.Fatal(err)
		}
		second, err := s.Exec(q)
		if err != nil {
			t.Fatal(err)
		}
		if first.Next() {
			t.Error("the first cursor still returns rows after its statement ran again")
		}
		if err := first.Err(); !errors.Is(err, sqlstore.ErrCursorClosed) {
			t.Errorf("first cursor Err = %v, want ErrCursorClosed", err)
		}
		if rows, err := first.All(); !errors.Is(err, sqlstore.ErrCursorClosed) {
			t.Errorf("first cursor All = %v, %v; want ErrCursorClosed", rows, err)
		}
		rows, err := second.All()
		if err != nil || len(rows) != 3 || rows[0][0] != int64(1) {
			t.Errorf("second cursor = %v, %v; want all 3 rows from the start", rows, err)
		}
		rows, err = other.All()
		if err != nil || len(rows) != 3 {
			t.Errorf("a cursor of another statement = %v, %v; want its 3 rows", rows, err)
		}
	})
}

func TestExecArguments(t *testing.T) {
	ts := newTestStore(t)
	type (
		myString string
		point    struct{ X, Y int }
	)
	tests := []struct {
		arg      any
		want     any
		wantType string
	}{
		{nil, nil, "null"},
		{true, int64(1), "integer"},
		{false, int64(0), "integer"},
		{0, int64(0), "integer"},
		{-42, int64(-42), "integer"},
		{int8(-8), int64(-8), "integer"},
		{int16(-16), int64(-16), "integer"},
		{int32(math.MinInt32), int64(math.MinInt32), "integer"},
		{int64(math.MaxInt64), int64(math.MaxInt64), "integer"},
		{int64(math.MinInt64), int64(math.MinInt64), "integer"},
		{uint(7), int64(7), "integer"},
		{uint8(255), int64(255), "integer"},
		{uint16(65535), int64(65535), "integer"},
		{uint32(math.MaxUint32), int64(math.MaxUint32), "integer"},
		{uint64(math.MaxInt64), int64(math.MaxInt64), "integer"},
		{float32(1.5), 1.5, "real"},
		{3.25, 3.25, "real"},
		{math.Inf(-1), math.Inf(-1), "real"},
		{"", "", "text"},
		{"héllo 日本", "héllo 日本", "text"},
		{"nul\x00inside", "nul\x00inside", "text"},
		{[]byte{0, 1, 0xff}, []byte{0, 1, 0xff}, "blob"},
		{[]byte{}, []byte{}, "blob"},
		{[]byte(nil), []byte{}, "blob"},
	}
	ts.event(func(s *sqlstore.Store) {
		mustExec(t, s, "CREATE TABLE vals (i INTEGER PRIMARY KEY, v)")
		for i, tt := range tests {
			// Straight back, and through a table.
			rows := mustExec(t, s, "SELECT ?1, typeof(?1)", tt.arg)
			if !reflect.DeepEqual(rows[0][0], tt.want) || rows[0][1] != tt.wantType {
				t.Errorf("SELECT %T(%v) = %T(%#v) %v, want %T(%#v) %s", tt.arg, tt.arg, rows[0][0], rows[0][0], rows[0][1], tt.want, tt.want, tt.wantType)
			}
			mustExec(t, s, "INSERT INTO vals VALUES (?, ?)", i, tt.arg)
		}
	})
	ts.reopen()
	ts.event(func(s *sqlstore.Store) {
		for i, tt := range tests {
			rows := mustExec(t, s, "SELECT v, typeof(v) FROM vals WHERE i = ?", i)
			if !reflect.DeepEqual(rows[0][0], tt.want) || rows[0][1] != tt.wantType {
				t.Errorf("stored %T(%v) read back as %T(%#v) %v", tt.arg, tt.arg, rows[0][0], rows[0][0], rows[0][1])
			}
		}
	})

	bad := []any{uint64(math.MaxInt64 + 1), uint(math.MaxUint64), myString("s"), point{1, 2}, &point{}, time.Now(), []int{1}, map[string]int{}, complex(1, 2), new(int), []string{"a"}}
	ts.event(func(s *sqlstore.Store) {
		for _, arg := range bad {
			cur, err := s.Exec("INSERT INTO vals (v) VALUES (?)", arg)
			if err == nil {
				cur.Close()
				t.Errorf("argument %T accepted", arg)
				continue
			}
			typ := fmt.Sprintf("%T", arg)
			if !strings.Contains(err.Error(), typ) && !strings.Contains(err.Error(), "overflow") {
				t.Errorf("argument %T: error %q names neither the type nor the overflow", arg, err)
			}
		}
		if n := queryInt(t, s, "SELECT count(*) FROM vals"); n != int64(len(tests)) {
			t.Errorf("refused arguments inserted rows: %d, want %d", n, len(tests))
		}
	})
}

func TestScanDestinations(t *testing.T) {
	ts := newTestStore(t)
	ts.event(func(s *sqlstore.Store) {
		var (
			i64   int64
			i     int
			f     float64
			b     bool
			str   string
			bs    []byte
			a     any
			null  = []byte("not nil")
			check = func(name string, got, want any) {
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s = %#v, want %#v", name, got, want)
				}
			}
		)
		cur, err := s.Exec("SELECT ?, ?, ?, ?, ?, ?, ?, NULL", int64(1)<<62, 7, 2.5, true, "s", []byte("b"), "any")
		if err != nil {
			t.Fatal(err)
		}
		if err := cur.One(&i64, &i, &f, &b, &str, &bs, &a, &null); err != nil {
			t.Fatal(err)
		}
		check("int64", i64, int64(1)<<62)
		check("int", i, 7)
		check("float64", f, 2.5)
		check("bool", b, true)
		check("string", str, "s")
		check("[]byte", bs, []byte("b"))
		check("any", a, "any")
		if null != nil {
			t.Errorf("NULL scanned into []byte = %q, want nil", null)
		}
	})
}

func TestDatabaseSize(t *testing.T) {
	ts := newTestStore(t)
	ts.event(func(s *sqlstore.Store) {
		// An empty database, as on Cloudflare (~12 KB), though there is
		// no file yet.
		if n, err := s.Size(); n != 12288 || err != nil {
			t.Errorf("Size of a virgin object = %d, %v; want 12288", n, err)
		}
	})
	var empty, full int64
	ts.event(func(s *sqlstore.Store) {
		mustPut(t, s, "k", []byte("v"))
		if n, err := s.Size(); n != 12288 || err != nil {
			t.Errorf("Size after the first write = %d, %v; want 12288", n, err)
		}
		mustExec(t, s, "CREATE TABLE t (v BLOB)")
		var err error
		if empty, err = s.Size(); err != nil || empty <= 12288 {
			t.Fatalf("Size = %d, %v", empty, err)
		}
		for range 200 {
			mustExec(t, s, "INSERT INTO t VALUES (randomblob(1000))")
		}
		// The event sees its own growth.
		if full, err = s.Size(); err != nil || full < empty+200*1000 {
			t.Errorf("Size after 200 KB of inserts = %d, %v; was %d", full, err, empty)
		}
	})
	ts.reopen()
	ts.event(func(s *sqlstore.Store) {
		if n, err := s.Size(); n != full || err != nil {
			t.Errorf("Size after reopen = %d, %v; want %d", n, err, full)
		}
		for i := range 100 {
			mustPut(t, s, fmt.Sprint("k", i), bytes.Repeat([]byte{1}, 1000))
		}
		if n, _ := s.Size(); n <= full {
			t.Errorf("Size after 100 KB of KV puts = %d, was %d", n, full)
		}
	})
}

func TestSQLLimits(t *testing.T) {
	ts := newTestStore(t)
	// A statement of exactly n bytes inserting one row.
	insertOfSize := func(n int) string {
		const head, tail = "INSERT INTO t (a) VALUES ('", "')"
		return head + strings.Repeat("x", n-len(head)-len(tail)) + tail
	}
	cols := func(n int) string {
		var b strings.Builder
		for i := range n {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "c%d", i)
		}
		return b.String()
	}
	params := func(n int) (string, []any) {
		q := "SELECT " + strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
		args := make([]any, n)
		for i := range args {
			args[i] = i
		}
		return q, args
	}
	ts.event(func(s *sqlstore.Store) {
		mustExec(t, s, "CREATE TABLE t (a)")
	})
	ts.event(func(s *sqlstore.Store) {
		// Statement length.
		q := insertOfSize(sqlstore.MaxSQLLength)
		if len(q) != 100_000 {
			t.Fatalf("statement is %d bytes", len(q))
		}
		if _, err := s.Exec(q); err != nil {
			t.Errorf("a %d-byte statement: %v", len(q), err)
		}
		if _, err := s.Exec(insertOfSize(sqlstore.MaxSQLLength + 1)); err == nil {
			t.Errorf("a %d-byte statement was accepted", sqlstore.MaxSQLLength+1)
		}
		// Bound parameters.
		q, args := params(sqlstore.MaxBoundParameters)
		if rows := mustExec(t, s, q, args...); len(rows[0]) != 100 {
			t.Errorf("100 parameters gave %d columns", len(rows[0]))
		}
		q, args = params(sqlstore.MaxBoundParameters + 1)
		if _, err := s.Exec(q, args...); err == nil {
			t.Error("101 bound parameters were accepted")
		}
		if _, err := s.Exec("SELECT ?101", 1); err == nil {
			t.Error("parameter ?101 was accepted")
		}
		q, args = params(sqlstore.MaxBoundParameters + 1)
		if _, err := s.Exec("SELECT 1; "+q, args...); err == nil {
			t.Error("101 parameters in the last of two statements were accepted")
		}
		// Columns.
		if _, err := s.Exec("CREATE TABLE wide100 (" + cols(100) + ")"); err != nil {
			t.Errorf("a table of 100 columns: %v", err)
		}
		if _, err := s.Exec("CREATE TABLE wide101 (" + cols(101) + ")"); err == nil {
			t.Error("a table of 101 columns was created")
		}
		if _, err := s.Exec("ALTER TABLE wide100 ADD COLUMN c100"); err == nil {
			t.Error("a 101st column was added")
		}
	})
	ts.reopen()
	ts.event(func(s *sqlstore.Store) {
		if n := queryInt(t, s, "SELECT count(*) FROM t"); n != 1 {
			t.Errorf("t has %d rows, want 1 (from the statement at the limit)", n)
		}
		want := int64(sqlstore.MaxSQLLength - len("INSERT INTO t (a) VALUES ('')"))
		if n := queryInt(t, s, "SELECT length(a) FROM t"); n != want {
			t.Errorf("the inserted value is %d bytes, want %d", n, want)
		}
		if got := userSchema(t, s); !slices.Equal(got, []string{"table t", "table wide100"}) {
			t.Errorf("schema = %q", got)
		}
		if n := queryInt(t, s, "SELECT count(*) FROM pragma_table_info('wide100')"); n != 100 {
			t.Errorf("wide100 has %d columns", n)
		}
	})
}

// TestCursorOpenAcrossFirstWrite: a cursor a virgin object opened before its
// first write (which creates the file) still reads all its rows.
func TestCursorOpenAcrossFirstWrite(t *testing.T) {
	ts := newTestStore(t)
	ts.event(func(s *sqlstore.Store) {
		cur, err := s.Exec("SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3")
		if err != nil {
			t.Fatal(err)
		}
		if !cur.Next() {
			t.Fatal("no first row")
		}
		mustPut(t, s, "k", nil)
		mustExec(t, s, "CREATE TABLE t (a)")
		rows, err := cur.All()
		if err != nil || !reflect.DeepEqual(rows, [][]any{{int64(2)}, {int64(3)}}) {
			t.Errorf("rest of the rows = %v, %v; want 2 and 3", rows, err)
		}
	})
	if !ts.fileExists() {
		t.Fatal("no file after the first write")
	}
}
