package sqlstore

import (
	"errors"
	"strings"

	"github.com/ncruces/go-sqlite3"
	"github.com/ncruces/go-sqlite3/ext/fts5"
	"github.com/ncruces/go-sqlite3/ext/rtree"
)

// extensions register the virtual-table modules user SQL may use beyond
// SQLite's core (which has JSON and math built in): FTS5 and R*Tree, as
// Cloudflare's SQL API has them. Each is a wasm module of its own, linked
// into a connection's SQLite; most objects never use one, so a connection
// gets one only when a statement fails for want of it (needModule), and
// the statement is then made again.
var extensions = map[string]func(*sqlite3.Conn) error{
	"fts5":      fts5.Register,
	"fts5vocab": fts5.Register,
	"rtree":     rtree.Register,
	"rtree_i32": rtree.Register,
	"geopoly":   rtree.Register,
}

// registrations are the extensions' registrations, each once.
var registrations = []func(*sqlite3.Conn) error{fts5.Register, rtree.Register}

// needModule registers on c the extension whose module err says c lacks,
// and reports whether it did: the failed statement can then be made
// again. SQLite reports a missing module as a plain SQLITE_ERROR "no such
// module: NAME", at prepare time for statements that use a virtual table
// and at step time for CREATE VIRTUAL TABLE. The name must be exactly one
// of the extensions' modules, which SQLite reports missing only while the
// extension is not registered: an extension is never registered twice on
// a connection. (A user's RAISE() with the same text is a constraint
// error, not taken for one.)
func needModule(c *sqlite3.Conn, err error) bool {
	const prefix = "no such module: "
	var e *sqlite3.Error
	if !errors.As(err, &e) || e.Code() != sqlite3.ERROR {
		return false
	}
	msg := e.Error()
	i := strings.Index(msg, prefix)
	if i < 0 {
		return false
	}
	register := extensions[strings.ToLower(msg[i+len(prefix):])]
	return register != nil && register(c) == nil
}

// withModules runs op, which makes a statement on c, again after each
// failure for want of an extension it then registers (a statement may use
// several: a join, a trigger's body). Each extension is registered once,
// so op runs at most once more than there are extensions.
func withModules(c *sqlite3.Conn, op func() error) error {
	err := op()
	for range len(registrations) {
		if err == nil || !needModule(c, err) {
			break
		}
		err = op()
	}
	return err
}

// execModules runs each statement of sql on c, like c.Exec, registering
// the extensions the statements need (see needModule). It is for SQL
// that is not the user's statement of a turn: a class schema, the DROPs
// of DeleteAll.
func execModules(c *sqlite3.Conn, sql string) error {
	for {
		var st *sqlite3.Stmt
		var tail string
		err := withModules(c, func() (err error) {
			st, tail, err = c.Prepare(sql)
			return err
		})
		if err != nil {
			return err
		}
		if st == nil { // only blanks and comments were left
			return nil
		}
		// Exec steps to the end and resets, failed or not.
		err = withModules(c, st.Exec)
		if err = errors.Join(err, st.Close()); err != nil {
			return err
		}
		sql = tail
	}
}

// readyModules gets the object's connection ready for its virtual tables
// before the connection's first user statement: if the database has any,
// it registers every extension and connects each table. A statement that
// uses a virtual table would register its extension anyway (needModule),
// but SQLite marks a virtual table's shadow tables (FTS5's ft_data, say),
// which defensive mode keeps user SQL from writing to or dropping, only
// when it connects the table with its module registered.
func (s *Store) readyModules() error {
	st, err := s.prepared("SELECT name FROM sqlite_schema WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL TABLE%'")
	if err != nil {
		return err
	}
	var tables []string
	for st.Step() {
		tables = append(tables, st.ColumnText(0))
	}
	if err := errors.Join(st.Err(), st.Reset()); err != nil {
		return s.afterError(err)
	}
	if len(tables) > 0 {
		for _, register := range registrations {
			if err := register(s.conn); err != nil {
				return err
			}
		}
		for _, t := range tables {
			// Preparing a statement on the table connects it; one whose
			// module is not an extension's fails, and stays unusable.
			if st, _, err := s.conn.Prepare("SELECT 1 FROM " + sqlite3.QuoteIdentifier(t)); err == nil {
				st.Close()
			}
		}
	}
	s.modulesReady = true
	return nil
}

// mayHaveVirtualTables reports whether a class schema may have made
// virtual tables: whether it says VIRTUAL.
func mayHaveVirtualTables(classSchema string) bool {
	return strings.Contains(strings.ToLower(classSchema), "virtual")
}
