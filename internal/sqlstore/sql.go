package sqlstore

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/ncruces/go-sqlite3"
)

// Exec runs query with args bound to its last statement and returns a cursor
// over that statement's rows. Statements before the last (separated by ';')
// run to completion with no arguments. The first row is fetched before Exec
// returns, so a write takes effect even if the cursor is never read.
func (s *Store) Exec(query string, args ...any) (*Cursor, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if len(query) > MaxSQLLength {
		return nil, fmt.Errorf("%w: statement longer than %d bytes", ErrNotAllowed, MaxSQLLength)
	}
	for {
		st, tail, cached, err := s.prepareUser(query)
		if err != nil {
			return nil, err
		}
		if st == nil { // only whitespace or comments
			return nil, fmt.Errorf("%w: empty statement", ErrNotAllowed)
		}
		last := isBlank(tail)
		if !last {
			// Not the last statement: run it without arguments, then go on.
			cur, err := s.start(st, cached, nil)
			if err != nil {
				return nil, err
			}
			for cur.Next() {
			}
			if err := cur.Close(); err != nil {
				return nil, err
			}
			query = tail
			continue
		}
		return s.start(st, cached, args)
	}
}

// prepareUser prepares the first statement of query for user code, on the
// object's database or, for a virgin object and a read-only statement, on
// an in-memory copy of the template.
func (s *Store) prepareUser(query string) (st *sqlite3.Stmt, tail string, cached bool, err error) {
	c, err := s.reader()
	if err != nil {
		return nil, "", false, err
	}
	if c == nil {
		if err := s.openScratch(); err != nil {
			return nil, "", false, err
		}
		st, tail, err = s.prepareOn(s.scratch, query)
		if err != nil || st == nil || st.ReadOnly() {
			return st, tail, false, err
		}
		// It writes: the object needs its file after all.
		st.Close()
		if c, err = s.writer(); err != nil {
			return nil, "", false, err
		}
	}
	if st := s.user.get(query); st != nil {
		s.auth.ddl = false
		return st, "", true, nil
	}
	st, tail, err = s.prepareOn(c, query)
	if err != nil || st == nil {
		return st, tail, false, err
	}
	if isBlank(tail) && !s.auth.ddl {
		if old := s.user.put(query, st); old != nil {
			s.release(old)
		}
		return st, tail, true, nil
	}
	return st, tail, false, nil
}

func (s *Store) prepareOn(c *sqlite3.Conn, query string) (*sqlite3.Stmt, string, error) {
	if isVacuum(query) {
		return nil, "", fmt.Errorf("%w: VACUUM is not allowed: it cannot run inside the event's transaction, and VACUUM INTO writes a file outside the object", ErrNotAllowed)
	}
	if c == s.conn && !s.modulesReady {
		if err := s.readyModules(); err != nil {
			return nil, "", err
		}
	}
	s.auth.user, s.auth.denied, s.auth.ddl, s.auth.pragma = true, "", false, false
	var st *sqlite3.Stmt
	var tail string
	err := withModules(c, func() (err error) {
		s.auth.user = true
		st, tail, err = c.Prepare(query)
		s.auth.user = false
		return err
	})
	if s.auth.pragma && c == s.scratch {
		s.scratchTainted = true // a PRAGMA may change the connection: do not share it
	}
	if err != nil {
		if s.auth.denied != "" {
			return nil, "", fmt.Errorf("%w: %s", ErrNotAllowed, s.auth.denied)
		}
		return nil, "", err
	}
	return st, tail, nil
}

// openScratch borrows a scratch database for the turn (see ScratchPool).
func (s *Store) openScratch() error {
	if s.scratch != nil {
		return nil
	}
	c, err := s.cfg.Scratch.get()
	if err != nil {
		return err
	}
	if err := s.auth.install(c); err != nil {
		c.Close()
		return err
	}
	s.scratch, s.scratchTainted = c, false
	return nil
}

// releaseScratch gives the scratch database back once no cursor of the turn
// can use it.
func (s *Store) releaseScratch() error {
	c := s.scratch
	if c == nil {
		return nil
	}
	s.scratch = nil
	if s.scratchTainted {
		return c.Close()
	}
	return s.cfg.Scratch.put(c)
}

// start binds args, makes sure a writing statement runs inside the batch
// transaction, and fetches the first row.
func (s *Store) start(st *sqlite3.Stmt, cached bool, args []any) (*Cursor, error) {
	for _, cur := range s.cursors {
		if cur.st == st && !cur.closed {
			// The same cached statement again: the old cursor ends here.
			// (A statement has at most one open cursor, and finish
			// removes it from s.cursors: stop looking.)
			cur.finish(fmt.Errorf("%w: the same statement was executed again", ErrCursorClosed))
			break
		}
	}
	ddl := s.auth.ddl
	fail := func(err error) (*Cursor, error) {
		st.Reset()
		st.ClearBindings()
		if !cached {
			st.Close()
		}
		return nil, s.afterError(err)
	}
	if err := bindArgs(st, args); err != nil {
		return fail(err)
	}
	c := st.Conn()
	if c == s.conn && !st.ReadOnly() {
		if _, err := s.writer(); err != nil {
			return fail(err)
		}
	}
	if ddl {
		if err := c.Exec("SAVEPOINT ddl"); err != nil {
			return fail(err)
		}
	}
	st.Status(sqlite3.STMTSTATUS_FULLSCAN_STEP, true) // a cached statement counted its last run's
	cur := &Cursor{s: s, st: st, cached: cached, epoch: s.epoch}
	cur.hasRow = cur.step()
	if err := st.Err(); err != nil && needModule(c, err) {
		// CREATE VIRTUAL TABLE looks its module up as it runs.
		withModules(c, func() error {
			st.Reset()
			cur.hasRow = cur.step()
			return st.Err()
		})
	}
	if err := cur.stepErr(); err != nil {
		if ddl {
			c.Exec("ROLLBACK TO ddl; RELEASE ddl")
		}
		return fail(err)
	}
	if ddl {
		if err := checkReserved(c); err != nil {
			c.Exec("ROLLBACK TO ddl; RELEASE ddl")
			return fail(err)
		}
		if err := c.Exec("RELEASE ddl"); err != nil {
			return fail(err)
		}
	}
	if !cur.hasRow {
		cur.finish(nil)
	} else {
		s.cursors = append(s.cursors, cur)
	}
	return cur, nil
}

// checkReserved fails if a statement (a user's, or a class schema) created
// a schema object with the reserved prefix (ALTER TABLE ... RENAME TO is not
// visible to the authorizer).
func checkReserved(c *sqlite3.Conn) error {
	st, _, err := c.Prepare(`SELECT count(*) FROM sqlite_schema WHERE name LIKE '\_durable\_%' ESCAPE '\'`)
	if err != nil {
		return err
	}
	defer st.Close()
	if !st.Step() {
		return st.Err()
	}
	if n := st.ColumnInt(0); n != reservedObjects {
		return fmt.Errorf("%w: names starting with %q are reserved", ErrNotAllowed, reservedPrefix)
	}
	return nil
}

// release closes a statement evicted from the cache, or hands it to the
// open cursor still using it.
func (s *Store) release(st *sqlite3.Stmt) {
	for _, cur := range s.cursors {
		if cur.st == st && !cur.closed {
			cur.cached = false
			return
		}
	}
	st.Close()
}

// closeCursors ends the open cursors of the turn. Cursors that already
// finished are not kept (an event may run any number of statements); they
// see the epoch change when next used.
func (s *Store) closeCursors() {
	open := s.cursors
	s.cursors = nil
	for _, c := range open {
		c.finish(errEventEnded)
	}
	s.epoch++
}

var errEventEnded = fmt.Errorf("%w: the event that opened it ended", ErrCursorClosed)

// forget drops a finished cursor from the open ones.
func (s *Store) forget(c *Cursor) {
	for i := len(s.cursors) - 1; i >= 0; i-- {
		if s.cursors[i] == c {
			s.cursors = slices.Delete(s.cursors, i, i+1)
			return
		}
	}
}

// isBlank reports whether sql holds no statement: only blanks, comments
// and semicolons.
func isBlank(sql string) bool { return skipBlank(sql) == "" }

// skipBlank returns sql from its first token on, past blanks, comments and
// semicolons ("" if there is none, or an unterminated comment).
func skipBlank(sql string) string {
	for {
		sql = strings.TrimLeft(sql, " \t\r\n\f;")
		switch {
		case strings.HasPrefix(sql, "--"):
			i := strings.IndexByte(sql, '\n')
			if i < 0 {
				return ""
			}
			sql = sql[i+1:]
		case strings.HasPrefix(sql, "/*"):
			i := strings.Index(sql, "*/")
			if i < 0 {
				return ""
			}
			sql = sql[i+2:]
		default:
			return sql
		}
	}
}

// isVacuum reports whether the first statement of sql is a VACUUM, which
// the authorizer never sees.
func isVacuum(sql string) bool {
	sql = skipBlank(sql)
	const kw = "vacuum"
	if len(sql) < len(kw) || !strings.EqualFold(sql[:len(kw)], kw) {
		return false
	}
	if len(sql) == len(kw) {
		return true
	}
	c := sql[len(kw)]
	return !(c == '_' || c == '$' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80)
}

func bindArgs(st *sqlite3.Stmt, args []any) error {
	if n := st.BindCount(); n != len(args) {
		return fmt.Errorf("statement has %d parameters, got %d arguments", n, len(args))
	}
	for i, a := range args {
		p := i + 1
		var err error
		switch v := a.(type) {
		case nil:
			err = st.BindNull(p)
		case bool:
			err = st.BindBool(p, v)
		case int:
			err = st.BindInt64(p, int64(v))
		case int8:
			err = st.BindInt64(p, int64(v))
		case int16:
			err = st.BindInt64(p, int64(v))
		case int32:
			err = st.BindInt64(p, int64(v))
		case int64:
			err = st.BindInt64(p, v)
		case uint8:
			err = st.BindInt64(p, int64(v))
		case uint16:
			err = st.BindInt64(p, int64(v))
		case uint32:
			err = st.BindInt64(p, int64(v))
		case uint:
			if uint64(v) > math.MaxInt64 {
				return fmt.Errorf("argument %d: %d overflows int64", p, v)
			}
			err = st.BindInt64(p, int64(v))
		case uint64:
			if v > math.MaxInt64 {
				return fmt.Errorf("argument %d: %d overflows int64", p, v)
			}
			err = st.BindInt64(p, int64(v))
		case float32:
			err = st.BindFloat(p, float64(v))
		case float64:
			err = st.BindFloat(p, v)
		case string:
			err = st.BindText(p, v)
		case []byte:
			if v == nil {
				v = []byte{}
			}
			err = st.BindBlob(p, v)
		default:
			return fmt.Errorf("argument %d: unsupported type %T (use nil, bool, integers, floats, string or []byte)", p, a)
		}
		if err != nil {
			return fmt.Errorf("argument %d: %w", p, err)
		}
	}
	return nil
}

// Cursor iterates over the rows of a statement.
type Cursor struct {
	s       *Store
	st      *sqlite3.Stmt
	cached  bool
	hasRow  bool // a fetched row not yet returned by Next
	current bool // Scan reads the current row
	closed  bool
	err     error
	cols    []string
	epoch   uint64 // the store's epoch when the cursor was opened

	rowsRead    int64 // rows returned
	rowsWritten int64 // changes counted while this statement ran
}

// step steps the statement as user SQL and counts the rows it changed.
// SQLite adds a statement's changes to the connection's total when the
// statement halts, which happens inside one of its steps or its reset, so
// counting around those calls only (not between them, when other
// statements may run) gives this statement's changes, triggers included.
func (c *Cursor) step() bool {
	conn := c.st.Conn()
	before := conn.TotalChanges()
	c.s.auth.user, c.s.auth.denied = true, ""
	ok := c.st.Step()
	c.s.auth.user = false
	c.rowsWritten += conn.TotalChanges() - before
	return ok
}

// stepErr is the error of the last step, ErrNotAllowed if the authorizer
// refused something then: SQLite prepares some statements as they run (a
// table-valued PRAGMA function, a cached statement whose schema changed).
func (c *Cursor) stepErr() error {
	err := c.st.Err()
	if err != nil && c.s.auth.denied != "" {
		return fmt.Errorf("%w: %s", ErrNotAllowed, c.s.auth.denied)
	}
	return err
}

// expire closes a cursor whose event has ended.
func (c *Cursor) expire() {
	if c.epoch != c.s.epoch {
		c.finish(errEventEnded)
	}
}

// Next advances to the next row and reports whether there is one.
func (c *Cursor) Next() bool {
	c.expire()
	if c.closed {
		c.current = false
		return false
	}
	if c.hasRow {
		c.hasRow, c.current = false, true
		c.rowsRead++
		return true
	}
	if !c.step() {
		c.current = false
		c.finish(c.stepErr())
		return false
	}
	c.current = true
	c.rowsRead++
	return true
}

// Columns returns the names of the result columns, in order; names may repeat.
func (c *Cursor) Columns() []string {
	if c.cols == nil && c.st != nil {
		n := c.st.ColumnCount()
		c.cols = make([]string, n)
		for i := range n {
			c.cols[i] = c.st.ColumnName(i)
		}
	}
	return c.cols
}

// Scan copies the current row into dest.
func (c *Cursor) Scan(dest ...any) error {
	c.expire()
	if !c.current {
		if c.err != nil {
			return c.err
		}
		return errors.New("Scan called without a row (call Next first)")
	}
	if n := c.st.ColumnCount(); n != len(dest) {
		return fmt.Errorf("row has %d columns, Scan got %d destinations", n, len(dest))
	}
	for i, d := range dest {
		if err := scanColumn(c.st, i, d); err != nil {
			return fmt.Errorf("column %d (%s): %w", i, c.st.ColumnName(i), err)
		}
	}
	return nil
}

// Values returns the current row's values: int64, float64, string, []byte or
// nil each; nil when there is no current row.
func (c *Cursor) Values() []any {
	c.expire()
	if !c.current {
		return nil
	}
	row := make([]any, c.st.ColumnCount())
	for i := range row {
		row[i] = columnValue(c.st, i)
	}
	return row
}

// All returns the remaining rows and closes the cursor. A cursor closed by
// the end of its event or by its statement running again fails with
// ErrCursorClosed rather than look empty.
func (c *Cursor) All() ([][]any, error) {
	var rows [][]any
	for c.Next() {
		rows = append(rows, c.Values())
	}
	if errors.Is(c.err, ErrCursorClosed) {
		return rows, c.err
	}
	return rows, c.Close()
}

// One scans the only remaining row into dest; it fails unless exactly one
// row remains. The cursor is closed.
func (c *Cursor) One(dest ...any) error {
	if !c.Next() {
		if errors.Is(c.err, ErrCursorClosed) {
			return c.err
		}
		if err := c.Close(); err != nil {
			return err
		}
		return ErrNoRows
	}
	if err := c.Scan(dest...); err != nil {
		c.Close()
		return err
	}
	if c.Next() {
		c.Close()
		return ErrManyRows
	}
	return c.Close()
}

// Err returns the error that ended the iteration, if any.
func (c *Cursor) Err() error {
	c.expire()
	return c.err
}

// RowsRead estimates the rows the statement read: the rows it stepped
// through in full table scans, or the rows it returned if that is more
// (rows found through an index are counted as they are returned).
func (c *Cursor) RowsRead() int64 {
	if c.closed {
		return c.rowsRead
	}
	return max(c.rowsRead, int64(c.st.Status(sqlite3.STMTSTATUS_FULLSCAN_STEP, false)))
}

// RowsWritten returns the rows the statement inserted, updated or deleted,
// triggers included. SQLite counts them when the statement completes, so
// the value is final once the cursor is exhausted or closed.
func (c *Cursor) RowsWritten() int64 { return c.rowsWritten }

// Close releases the statement. It returns the iteration's error, if any.
func (c *Cursor) Close() error {
	c.expire()
	c.finish(nil)
	if errors.Is(c.err, ErrCursorClosed) {
		return nil
	}
	return c.err
}

func (c *Cursor) finish(err error) {
	if c.closed {
		if c.err == nil {
			c.err = err
		}
		return
	}
	c.s.forget(c)
	c.Columns()
	c.rowsRead = max(c.rowsRead, int64(c.st.Status(sqlite3.STMTSTATUS_FULLSCAN_STEP, false)))
	c.closed, c.current, c.hasRow = true, false, false
	if err != nil {
		c.err = c.s.afterError(err)
	}
	// A reset before the end completes the statement: its changes count.
	before := c.st.Conn().TotalChanges()
	c.st.Reset()
	c.rowsWritten += c.st.Conn().TotalChanges() - before
	c.st.ClearBindings()
	if !c.cached {
		c.st.Close()
	}
}

func columnValue(st *sqlite3.Stmt, i int) any {
	switch st.ColumnType(i) {
	case sqlite3.INTEGER:
		return st.ColumnInt64(i)
	case sqlite3.FLOAT:
		return st.ColumnFloat(i)
	case sqlite3.TEXT:
		return st.ColumnText(i)
	case sqlite3.BLOB:
		return st.ColumnBlob(i, []byte{})
	default:
		return nil
	}
}

func scanColumn(st *sqlite3.Stmt, i int, dest any) error {
	null := st.ColumnType(i) == sqlite3.NULL
	switch d := dest.(type) {
	case *any:
		*d = columnValue(st, i)
	case *int64:
		*d = st.ColumnInt64(i)
	case *int:
		*d = int(st.ColumnInt64(i))
	case *int32:
		*d = int32(st.ColumnInt64(i))
	case *float64:
		*d = st.ColumnFloat(i)
	case *bool:
		*d = st.ColumnInt64(i) != 0
	case *string:
		*d = st.ColumnText(i)
	case *[]byte:
		if null {
			*d = nil
		} else {
			*d = st.ColumnBlob(i, []byte{})
		}
	default:
		return fmt.Errorf("unsupported destination type %T", dest)
	}
	return nil
}

// stmtCache keeps the prepared statements of recent user queries.
type stmtCache struct {
	max   int
	order []string
	m     map[string]*sqlite3.Stmt
}

func newStmtCache(max int) *stmtCache {
	return &stmtCache{max: max, m: map[string]*sqlite3.Stmt{}}
}

func (c *stmtCache) get(q string) *sqlite3.Stmt { return c.m[q] }

// put adds st and returns the statement it evicted, if any.
func (c *stmtCache) put(q string, st *sqlite3.Stmt) (evicted *sqlite3.Stmt) {
	if len(c.order) >= c.max {
		old := c.order[0]
		c.order = c.order[1:]
		evicted = c.m[old]
		delete(c.m, old)
	}
	c.m[q] = st
	c.order = append(c.order, q)
	return evicted
}

func (c *stmtCache) closeAll() {
	for _, st := range c.m {
		st.Close()
	}
	c.m = map[string]*sqlite3.Stmt{}
	c.order = nil
}
