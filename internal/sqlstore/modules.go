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

// needModule registers on c the extension whose module err says c lacks,
// and reports whether it did: the failed statement can then be made
// again. SQLite reports a missing module as a plain SQLITE_ERROR "no such
// module: NAME", at prepare time for statements that use a virtual table
// and at step time for CREATE VIRTUAL TABLE. A user's RAISE() with the
// same text is a constraint error, not taken for one.
func needModule(c *sqlite3.Conn, err error) bool {
	const prefix = "no such module: "
	var e *sqlite3.Error
	if !errors.As(err, &e) || e.Code() != sqlite3.ERROR {
		return false
	}
	msg := e.Error()
	i := strings.LastIndex(msg, prefix)
	if i < 0 {
		return false
	}
	register := extensions[strings.ToLower(msg[i+len(prefix):])]
	return register != nil && register(c) == nil
}

// execModules runs each statement of sql on c, like c.Exec, registering
// the extensions the statements need (see needModule). It is for SQL
// that is not the user's statement of a turn: a class schema, the DROPs
// of DeleteAll.
func execModules(c *sqlite3.Conn, sql string) error {
	for {
		st, tail, err := c.Prepare(sql)
		if err != nil && needModule(c, err) {
			st, tail, err = c.Prepare(sql)
		}
		if err != nil {
			return err
		}
		if st == nil { // only blanks and comments were left
			return nil
		}
		err = st.Exec()
		if err != nil && needModule(c, err) {
			err = st.Exec() // Exec steps to the end and resets, failed or not
		}
		if err = errors.Join(err, st.Close()); err != nil {
			return err
		}
		sql = tail
	}
}
