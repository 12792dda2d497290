// Package node holds the state of one runtime's data directory that belongs
// to no object: the directory lock, the secret that IDs are authenticated
// with, and the database the alarm index lives in.
package node

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/ncruces/go-sqlite3"
	"golang.org/x/sys/unix"
)

// ErrLocked is returned when another process holds the data directory.
var ErrLocked = errors.New("data directory is in use by another process")

// DB is the node database, <data>/node.sqlite. Its methods are safe for
// concurrent use.
type DB struct {
	mu   sync.Mutex
	conn *sqlite3.Conn
	// stmts caches DoStmt's statements by their SQL; they are finalized
	// before conn is closed, which fails while any is open.
	stmts  map[string]*sqlite3.Stmt
	path   string
	lock   *os.File
	secret []byte
}

// Open locks dir and opens its node database, creating both if needed.
// full selects synchronous=FULL (every commit synced) instead of NORMAL
// (commits made durable by the barrier).
func Open(dir string, full bool) (*DB, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock data directory: %w", err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrLocked, dir)
		}
		return nil, fmt.Errorf("lock data directory: %w", err)
	}
	db := &DB{path: filepath.Join(dir, "node.sqlite"), lock: lock, stmts: map[string]*sqlite3.Stmt{}}
	if err := db.open(full); err != nil {
		lock.Close()
		return nil, err
	}
	return db, nil
}

const schema = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value ANY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS alarms (
	ns TEXT NOT NULL,
	id BLOB NOT NULL,
	at INTEGER NOT NULL,
	PRIMARY KEY (ns, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS alarms_at ON alarms (at);
`

func (db *DB) open(full bool) error {
	c, err := sqlite3.Open(db.path)
	if err != nil {
		return fmt.Errorf("open %s: %w", db.path, err)
	}
	sync := "NORMAL"
	if full {
		sync = "FULL"
	}
	if err := c.Exec("PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=WAL; PRAGMA synchronous=" + sync + ";" + schema); err != nil {
		c.Close()
		return fmt.Errorf("open %s: %w", db.path, err)
	}
	db.conn = c
	secret, err := db.loadSecret()
	if err != nil {
		c.Close()
		return err
	}
	db.secret = secret
	return nil
}

// loadSecret returns the directory's secret, creating it on first start.
// It is made durable at once: every ID handed out depends on it.
func (db *DB) loadSecret() ([]byte, error) {
	st, _, err := db.conn.Prepare("SELECT value FROM meta WHERE key = 'secret'")
	if err != nil {
		return nil, err
	}
	defer st.Close()
	if st.Step() {
		return st.ColumnBlob(0, nil), nil
	}
	if err := st.Err(); err != nil {
		return nil, err
	}
	secret := make([]byte, 32)
	rand.Read(secret)
	ins, _, err := db.conn.Prepare("INSERT INTO meta (key, value) VALUES ('secret', ?)")
	if err != nil {
		return nil, err
	}
	defer ins.Close()
	ins.BindBlob(1, secret)
	if err := ins.Exec(); err != nil {
		return nil, fmt.Errorf("store secret: %w", err)
	}
	if _, _, err := db.conn.WALCheckpoint("main", sqlite3.CHECKPOINT_FULL); err != nil {
		return nil, fmt.Errorf("store secret: %w", err)
	}
	return secret, nil
}

// Secret returns the 32-byte secret of the data directory.
func (db *DB) Secret() []byte { return db.secret }

// Path returns the node database's path.
func (db *DB) Path() string { return db.path }

// Do runs fn with the connection, holding the database's lock.
func (db *DB) Do(fn func(c *sqlite3.Conn) error) error {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.conn == nil {
		return errors.New("node database closed")
	}
	return fn(db.conn)
}

// DoStmt runs fn with the statement sql, holding the database's lock. The
// statement is prepared on first use and kept for the next ones, so sql
// should be one of a fixed set, not built from values (bind those). fn
// binds every parameter and returns the statement's error; the statement
// is then reset and its bindings cleared, whatever fn did.
func (db *DB) DoStmt(sql string, fn func(st *sqlite3.Stmt) error) error {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.conn == nil {
		return errors.New("node database closed")
	}
	st := db.stmts[sql]
	if st == nil {
		var err error
		st, _, err = db.conn.PrepareFlags(sql, sqlite3.PREPARE_PERSISTENT)
		if err != nil {
			return err
		}
		db.stmts[sql] = st
	}
	// A failed step's error is fn's to report; Reset returns it again.
	defer st.ClearBindings()
	defer st.Reset()
	return fn(st)
}

// Close closes the database and releases the directory lock.
func (db *DB) Close() error {
	db.mu.Lock()
	defer db.mu.Unlock()
	var err error
	if db.conn != nil {
		for sql, st := range db.stmts {
			err = errors.Join(err, st.Close())
			delete(db.stmts, sql)
		}
		err = errors.Join(err, db.conn.Close())
		db.conn = nil
	}
	if db.lock != nil {
		db.lock.Close() // closing the file releases the flock
		db.lock = nil
	}
	return err
}
