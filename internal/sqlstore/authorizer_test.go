package sqlstore_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/durableobjects/durable/internal/sqlstore"
)

// refusedSQL are statements user SQL may not run, with a word or phrase the
// error must contain to say why.
var refusedSQL = []struct {
	query string
	why   string
}{
	{"SELECT * FROM _durable_kv", "internal table"},
	{"SELECT key FROM _durable_meta", "internal table"},
	{"SELECT * FROM _DURABLE_KV", "internal table"},
	{"SELECT * FROM _Durable_Meta", "internal table"},
	{`SELECT * FROM "_durable_kv"`, "internal table"},
	{"SELECT * FROM [_durable_kv]", "internal table"},
	{"SELECT * FROM main._durable_kv", "internal table"},
	{"SELECT count(*) FROM _durable_kv", "internal table"},
	{"SELECT * FROM users WHERE id IN (SELECT rowid FROM _durable_meta)", "internal table"},
	{"WITH x AS (SELECT * FROM _durable_kv) SELECT * FROM x", "internal table"},
	{"INSERT INTO _durable_kv VALUES (x'6b', x'76')", "internal table"},
	{"INSERT INTO _durable_meta VALUES ('alarm', 1)", "internal table"},
	{"INSERT INTO users (name) SELECT key FROM _durable_kv", "internal table"},
	{"UPDATE _durable_kv SET value = x'00'", "internal table"},
	{"UPDATE _durable_meta SET value = 0", "internal table"},
	{"DELETE FROM _durable_kv", "internal table"},
	{"DELETE FROM _DURABLE_META", "internal table"},
	{"REPLACE INTO _durable_kv VALUES (x'6b', x'76')", "internal table"},
	{"CREATE TABLE _durable_x (a)", "_durable_x"},
	{"CREATE TABLE _DURABLE_X (a)", "_DURABLE_X"},
	{"CREATE TABLE IF NOT EXISTS _durable_kv (a)", "_durable_kv"},
	{"CREATE TABLE _durable_copy AS SELECT * FROM users", "_durable_copy"},
	{"CREATE TEMP TABLE _durable_tmp (a)", "TEMP"},
	{"CREATE TEMP TABLE tmp (a)", "TEMP"},
	{"CREATE TABLE temp.tmp (a)", "TEMP"},
	{"CREATE TEMPORARY TABLE tmp AS SELECT * FROM users", "TEMP"},
	{"CREATE TEMP VIEW tv AS SELECT 1", "TEMP"},
	{"CREATE TEMP TRIGGER tt AFTER INSERT ON users BEGIN SELECT 1; END", "TEMP"},
	{"CREATE VIRTUAL TABLE temp.search USING fts5(body)", "TEMP"},
	{"VACUUM", "VACUUM"},
	{" /* c */ vacuum main", "VACUUM"},
	{"VACUUM INTO '/tmp/durable-vacuum-test.db'", "VACUUM"},
	{"SELECT * FROM pragma_journal_mode", "journal_mode"},
	{"SELECT * FROM pragma_compile_options", "compile_options"},
	{"SELECT * FROM pragma_table_info('_durable_kv')", "_durable_kv"},
	{"PRAGMA quick_check(_durable_kv)", "_durable_kv"},
	{"PRAGMA defer_foreign_keys = abcd", "boolean"},
	{"PRAGMA foreign_keys = 2", "boolean"},
	{"CREATE VIEW _durable_view AS SELECT 1", "_durable_view"},
	{"CREATE INDEX kv_value ON _durable_kv (value)", "_durable_kv"},
	{"CREATE INDEX _durable_idx ON users (name)", "_durable_idx"},
	{"CREATE TRIGGER kv_trig AFTER INSERT ON _durable_kv BEGIN SELECT 1; END", "_durable_kv"},
	{"CREATE TRIGGER meta_trig BEFORE DELETE ON _durable_meta BEGIN SELECT 1; END", "_durable_meta"},
	{"CREATE TRIGGER _durable_trig AFTER INSERT ON users BEGIN SELECT 1; END", "_durable_trig"},
	{"ALTER TABLE users RENAME TO _durable_users", "reserved"},
	{"ALTER TABLE users RENAME TO _DURABLE_USERS", "reserved"},
	{"ALTER TABLE _durable_kv RENAME TO kv", "_durable_kv"},
	{"ALTER TABLE _durable_kv ADD COLUMN x", "_durable_kv"},
	{"DROP TABLE _durable_kv", "_durable_kv"},
	{"DROP TABLE IF EXISTS _durable_meta", "_durable_meta"},
	{"ATTACH DATABASE ':memory:' AS other", "ATTACH"},
	{"DETACH DATABASE other", "DETACH"},
	{"BEGIN", "transaction"},
	{"BEGIN IMMEDIATE", "transaction"},
	{"BEGIN EXCLUSIVE TRANSACTION", "transaction"},
	{"COMMIT", "transaction"},
	{"END", "transaction"},
	{"ROLLBACK", "transaction"},
	{"SAVEPOINT sp", "transaction"},
	{"RELEASE sp", "transaction"},
	{"ROLLBACK TO sp", "transaction"},
	{"PRAGMA journal_mode", "journal_mode"},
	{"PRAGMA journal_mode = DELETE", "journal_mode"},
	{"PRAGMA main.journal_mode = OFF", "journal_mode"},
	{"PRAGMA synchronous = OFF", "synchronous"},
	{"PRAGMA writable_schema = ON", "writable_schema"},
	{"PRAGMA locking_mode = NORMAL", "locking_mode"},
	{"PRAGMA JOURNAL_MODE = MEMORY", "journal_mode"},
	{"PRAGMA cache_size = 1", "cache_size"},
	{"PRAGMA wal_checkpoint", "wal_checkpoint"},
	{"PRAGMA page_size = 8192", "page_size"},
	{"PRAGMA page_size(8192)", "page_size"},
	{"PRAGMA data_version = 5", "data_version"},
	{"PRAGMA table_info(_durable_kv)", "_durable_kv"},
	{"PRAGMA table_info('_DURABLE_META')", "_DURABLE_META"},
	{"PRAGMA table_xinfo(_durable_kv)", "_durable_kv"},
	{"PRAGMA index_list(_durable_kv)", "_durable_kv"},
	{"PRAGMA foreign_key_list(_durable_meta)", "_durable_meta"},
	{"SELECT sqlite_version()", "sqlite_version"},
}

// newAuthStore returns a store with committed KV data and a users table.
func newAuthStore(t *testing.T) *testStore {
	ts := newTestStore(t)
	ts.event(func(s *sqlstore.Store) {
		mustPut(t, s, "k", []byte("v"))
		if err := s.SetMetaInt("alarm", 42); err != nil {
			t.Fatal(err)
		}
		mustExec(t, s, "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO users (name) VALUES ('ann')")
	})
	ts.reopen()
	return ts
}

// checkAuthStoreUnchanged checks the data newAuthStore wrote is as it was.
func checkAuthStoreUnchanged(t *testing.T, ts *testStore) {
	t.Helper()
	ts.reopen()
	ts.event(func(s *sqlstore.Store) {
		if es, err := s.List(sqlstore.ListOptions{}); err != nil || len(es) != 1 || es[0].Key != "k" || string(es[0].Value) != "v" {
			t.Errorf("KV data changed: %q, %v", es, err)
		}
		if v, ok, err := s.MetaInt("alarm"); v != 42 || !ok || err != nil {
			t.Errorf("metadata changed: %d, %v, %v", v, ok, err)
		}
		if rows := mustExec(t, s, "SELECT id, name FROM users"); !reflect.DeepEqual(rows, [][]any{{int64(1), "ann"}}) {
			t.Errorf("users changed: %v", rows)
		}
		if got := userSchema(t, s); !slices.Equal(got, []string{"table users"}) {
			t.Errorf("schema changed: %q", got)
		}
		internal := mustExec(t, s, `SELECT name FROM sqlite_schema WHERE name LIKE '\_durable%' ESCAPE '\' ORDER BY name`)
		if !reflect.DeepEqual(internal, [][]any{{"_durable_kv"}, {"_durable_meta"}}) {
			t.Errorf("internal schema changed: %v", internal)
		}
		// The connection is as the store set it up.
		if n := queryInt(t, s, "PRAGMA foreign_keys"); n != 1 {
			t.Errorf("foreign_keys = %d", n)
		}
	})
	// Still a WAL database (file header bytes 18 and 19 are 2).
	b, err := os.ReadFile(ts.path)
	if err != nil {
		t.Fatal(err)
	}
	if b[18] != 2 || b[19] != 2 {
		t.Errorf("database no longer in WAL mode: header %d %d", b[18], b[19])
	}
}

func TestAuthorizerRefuses(t *testing.T) {
	ts := newAuthStore(t)
	other := filepath.Join(t.TempDir(), "other.db")
	tests := append(slices.Clone(refusedSQL), struct{ query, why string }{"ATTACH '" + other + "' AS other", "ATTACH"})
	for _, tt := range tests {
		ts.event(func(s *sqlstore.Store) {
			cur, err := s.Exec(tt.query)
			if err == nil {
				cur.Close()
				t.Errorf("%q was accepted", tt.query)
				return
			}
			if !errors.Is(err, sqlstore.ErrNotAllowed) {
				t.Errorf("%q: err = %v, want ErrNotAllowed", tt.query, err)
			}
			if !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(tt.why)) {
				t.Errorf("%q: error %q does not say why (%q)", tt.query, err, tt.why)
			}
		})
	}
	checkAuthStoreUnchanged(t, ts)
	if _, err := os.Stat(other); err == nil {
		t.Error("ATTACH created a database file")
	}
}

// TestAuthorizerRefusesOnVirginObject: an object with no file checks user
// SQL the same way, and a refused statement does not create the file.
func TestAuthorizerRefusesOnVirginObject(t *testing.T) {
	ts := newTestStore(t)
	for _, tt := range refusedSQL {
		if strings.Contains(tt.query, "users") {
			continue // needs the table
		}
		ts.event(func(s *sqlstore.Store) {
			cur, err := s.Exec(tt.query)
			if err == nil {
				cur.Close()
				t.Errorf("virgin object: %q was accepted", tt.query)
				return
			}
			if !errors.Is(err, sqlstore.ErrNotAllowed) {
				t.Errorf("virgin object: %q: err = %v, want ErrNotAllowed", tt.query, err)
			}
		})
	}
	if ts.fileExists() {
		t.Error("refused statements created the object's file")
	}
}

// TestRefusedStatementKeepsEventWrites: a refused statement fails alone;
// the event's other writes, before and after it, commit.
func TestRefusedStatementKeepsEventWrites(t *testing.T) {
	ts := newAuthStore(t)
	ts.event(func(s *sqlstore.Store) {
		mustPut(t, s, "before", []byte("1"))
		mustExec(t, s, "INSERT INTO users (name) VALUES ('bob')")
		for _, q := range []string{"DELETE FROM _durable_kv", "ROLLBACK", "PRAGMA journal_mode = DELETE", "ALTER TABLE users RENAME TO _durable_u"} {
			if _, err := s.Exec(q); !errors.Is(err, sqlstore.ErrNotAllowed) {
				t.Errorf("%q: err = %v, want ErrNotAllowed", q, err)
			}
		}
		mustPut(t, s, "after", []byte("2"))
	})
	ts.reopen()
	ts.event(func(s *sqlstore.Store) {
		if got := listKeys(t, s, sqlstore.ListOptions{}); !slices.Equal(got, []string{"after", "before", "k"}) {
			t.Errorf("keys = %q", got)
		}
		if rows := mustExec(t, s, "SELECT name FROM users ORDER BY id"); !reflect.DeepEqual(rows, [][]any{{"ann"}, {"bob"}}) {
			t.Errorf("users = %v", rows)
		}
	})
}

func TestAuthorizerAllows(t *testing.T) {
	ts := newAuthStore(t)
	allowed := []struct {
		query string
		want  [][]any // nil: any result
	}{
		{"PRAGMA foreign_keys = ON", nil},
		{"PRAGMA foreign_keys", [][]any{{int64(1)}}},
		{"PRAGMA table_list", nil},
		{"PRAGMA table_info(users)", nil},
		{"PRAGMA table_xinfo('users')", nil},
		{"PRAGMA data_version", nil},
		{"PRAGMA page_size", [][]any{{int64(4096)}}},
		{"PRAGMA index_list(users)", nil},
		{"PRAGMA foreign_key_check", nil},
		{"PRAGMA foreign_key_list(users)", nil},
		{"PRAGMA quick_check", [][]any{{"ok"}}},
		{"PRAGMA optimize", nil},
		{"ANALYZE", nil},
		{"ANALYZE users", nil},
		{"ANALYZE _durable_kv", nil}, // skipped, not refused: see the authorizer
		{"SELECT count(*) > 0 FROM sqlite_stat1 WHERE tbl = 'users'", [][]any{{int64(1)}}},
		{"SELECT count(*) FROM sqlite_stat1 WHERE tbl LIKE '%durable%'", [][]any{{int64(0)}}},
		{"SELECT count(*) FROM sqlite_stat4 WHERE tbl LIKE '%durable%'", [][]any{{int64(0)}}},
		{"PRAGMA recursive_triggers = ON", nil},
		{"SELECT count(*) FROM pragma_table_info('users')", [][]any{{int64(2)}}},
		{"SELECT name FROM sqlite_schema WHERE name = 'users'", [][]any{{"users"}}},
		{`SELECT json_extract('{"a": 41}', '$.a') + 1`, [][]any{{int64(42)}}},
		{"SELECT abs(-2), sqrt(16.0), lower('X')", [][]any{{int64(2), 4.0, "x"}}},
		{"CREATE TABLE durable_x (a)", nil},
		{"CREATE TABLE _durablex (a)", nil},
		{"CREATE TABLE x_durable_kv (a)", nil},
		{"PRAGMA foreign_keys = 'on'", nil},
		{"PRAGMA recursive_triggers = false", nil},
		{"PRAGMA case_sensitive_like = 0", nil},
		{"PRAGMA quick_check(users)", [][]any{{"ok"}}},
		{"PRAGMA quick_check(5)", [][]any{{"ok"}}},
		{"SELECT vacuum FROM (SELECT 1 AS vacuum)", [][]any{{int64(1)}}},
		{"CREATE INDEX users_name ON users (name)", nil},
		{"CREATE TRIGGER users_trig AFTER INSERT ON users BEGIN SELECT 1; END", nil},
		{"CREATE VIEW user_names AS SELECT name FROM users", nil},
		{"SELECT * FROM user_names", [][]any{{"ann"}}},
		{"ALTER TABLE durable_x RENAME TO renamed", nil},
		{"ALTER TABLE renamed ADD COLUMN b", nil},
		{"DROP TABLE renamed", nil},
		{"DROP TABLE _durablex", nil},
		{"DROP TABLE x_durable_kv", nil},
		{"DROP VIEW user_names", nil},
		{"DROP TRIGGER users_trig", nil},
		{"DROP INDEX users_name", nil},
		// Only table, index and trigger names are reserved, not column names.
		{"CREATE TABLE flags (_durable_flag INTEGER)", nil},
		{"INSERT INTO flags (_durable_flag) VALUES (1)", nil},
		{"UPDATE flags SET _durable_flag = _durable_flag + 1", nil},
		{"SELECT _durable_flag FROM flags", [][]any{{int64(2)}}},
		{"SELECT 1 AS _durable_alias", [][]any{{int64(1)}}},
		{"DROP TABLE flags", nil},
	}
	ts.event(func(s *sqlstore.Store) {
		for _, tt := range allowed {
			cur, err := s.Exec(tt.query)
			if err != nil {
				t.Errorf("%q: %v", tt.query, err)
				continue
			}
			rows, err := cur.All()
			if err != nil {
				t.Errorf("%q: %v", tt.query, err)
				continue
			}
			if tt.want != nil && !reflect.DeepEqual(rows, tt.want) {
				t.Errorf("%q = %v, want %v", tt.query, rows, tt.want)
			}
		}
	})
	checkAuthStoreUnchanged(t, ts)
}

// TestAuthorizerIndirectAccess tries to reach the internal tables through
// views, triggers, table-valued pragmas and VACUUM INTO. Each attempt may
// fail where it likes, but must expose and change nothing.
func TestAuthorizerIndirectAccess(t *testing.T) {
	ts := newAuthStore(t)
	copyPath := filepath.Join(t.TempDir(), "copy.db")
	attempts := [][]string{
		{"CREATE VIEW kv_view AS SELECT * FROM _durable_kv", "SELECT * FROM kv_view"},
		{"CREATE TEMP VIEW kv_tview AS SELECT * FROM _durable_meta", "SELECT * FROM kv_tview"},
		{"CREATE TRIGGER wipe AFTER INSERT ON users BEGIN DELETE FROM _durable_kv; END", "INSERT INTO users (name) VALUES ('x')"},
		{"CREATE TRIGGER steal AFTER UPDATE ON users BEGIN INSERT INTO users (name) SELECT key FROM _durable_kv; END", "UPDATE users SET name = name"},
		{"SELECT * FROM pragma_table_info('_durable_kv')"},
		{"SELECT * FROM pragma_index_list('_durable_meta')"},
		{"SELECT * FROM pragma_journal_mode"},
		{"VACUUM INTO '" + copyPath + "'"},
		{"VACUUM"},
	}
	for _, stmts := range attempts {
		ts.event(func(s *sqlstore.Store) {
			for _, q := range stmts {
				cur, err := s.Exec(q)
				if err != nil {
					return // refused here: fine
				}
				rows, err := cur.All()
				if err != nil {
					return
				}
				for _, r := range rows {
					for _, v := range r {
						if v == "k" || reflect.DeepEqual(v, []byte("k")) || v == "alarm" || v == "DELETE" {
							t.Errorf("%q exposed internal data: %v", q, rows)
						}
					}
				}
			}
		})
		// Drop what the attempt created, so the store is as before.
		ts.event(func(s *sqlstore.Store) {
			for _, q := range []string{"DROP VIEW IF EXISTS kv_view", "DROP TRIGGER IF EXISTS wipe", "DROP TRIGGER IF EXISTS steal", "DELETE FROM users WHERE id > 1"} {
				mustExec(t, s, q)
			}
			if _, err := s.Exec("UPDATE users SET name = 'ann'"); err != nil {
				t.Fatal(err)
			}
		})
	}
	checkAuthStoreUnchanged(t, ts)
	if _, err := os.Stat(copyPath); err == nil {
		t.Error("VACUUM INTO wrote a copy of the database")
	}
}

// A cached statement that a new trigger makes reach an internal table is
// refused with ErrNotAllowed when it runs again (SQLite prepares it anew
// as it steps), and the trigger's body changes nothing.
func TestAuthorizerRefusesCachedStatementAfterSchemaChange(t *testing.T) {
	ts := newAuthStore(t)
	ts.event(func(s *sqlstore.Store) {
		mustExec(t, s, "INSERT INTO users (name) VALUES ('cached')")
		mustExec(t, s, "CREATE TRIGGER sneaky AFTER INSERT ON users BEGIN DELETE FROM _durable_kv; END")
		_, err := s.Exec("INSERT INTO users (name) VALUES ('cached')")
		if !errors.Is(err, sqlstore.ErrNotAllowed) || !strings.Contains(err.Error(), "_durable_kv") {
			t.Errorf("cached INSERT firing the trigger: %v, want ErrNotAllowed naming _durable_kv", err)
		}
		if got := getString(t, s, "k"); got != "v" {
			t.Errorf("KV value after the refused INSERT = %q", got)
		}
	})
}
