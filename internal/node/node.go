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
	mu     sync.Mutex
	conn   *sqlite3.Conn
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
	db := &DB{path: filepath.Join(dir, "node.sqlite"), lock: lock}
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

// Close closes the database and releases the directory lock.
func (db *DB) Close() error {
	db.mu.Lock()
	defer db.mu.Unlock()
	var err error
	if db.conn != nil {
		err = db.conn.Close()
		db.conn = nil
	}
	if db.lock != nil {
		db.lock.Close() // closing the file releases the flock
		db.lock = nil
	}
	return err
}
