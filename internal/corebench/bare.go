package corebench

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	"github.com/ncruces/go-sqlite3"
)

// Bare is the ceiling of the one-object scenario: SQLite with no mailbox,
// no RPC and no barrier, through the same driver (ncruces/go-sqlite3, its
// native API) and settings the runtime gives objects (WAL,
// synchronous=NORMAL, locking_mode=EXCLUSIVE), one autocommit upsert per
// Put. It is not durable per commit: NORMAL syncs only at checkpoints.
type Bare struct {
	conn *sqlite3.Conn
	stmt *sqlite3.Stmt
	n    uint64
	buf  [8]byte
}

// OpenBare creates the database at path.
func OpenBare(path string) (*Bare, error) {
	c, err := sqlite3.Open(path)
	if err != nil {
		return nil, fmt.Errorf("bare: %w", err)
	}
	err = c.Exec(`PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA locking_mode=EXCLUSIVE;
		CREATE TABLE kv(k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID`)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("bare: %w", err)
	}
	st, _, err := c.Prepare(`INSERT INTO kv(k, v) VALUES(?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v`)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("bare: %w", err)
	}
	return &Bare{conn: c, stmt: st}, nil
}

// Put upserts a counter under one key, as Object.Put does.
func (b *Bare) Put() error {
	b.n++
	binary.BigEndian.PutUint64(b.buf[:], b.n)
	b.stmt.BindBlob(1, []byte("n"))
	b.stmt.BindBlob(2, b.buf[:])
	return b.stmt.Exec()
}

// Close closes the database.
func (b *Bare) Close() error {
	return errors.Join(b.stmt.Close(), b.conn.Close())
}

// BareRead is the baseline of a cold activation: open an object's database
// file as the runtime does (exclusive locking) and read one key. It returns
// the open connection; closing it is not part of the activation.
func BareRead(path string) (*sqlite3.Conn, error) {
	c, err := sqlite3.OpenFlags(path, sqlite3.OPEN_READWRITE)
	if err != nil {
		return nil, err
	}
	if err := bareRead(c); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func bareRead(c *sqlite3.Conn) error {
	if err := c.Exec("PRAGMA locking_mode=EXCLUSIVE"); err != nil {
		return err
	}
	st, _, err := c.Prepare("SELECT value FROM _durable_kv WHERE key = ?")
	if err != nil {
		return err
	}
	defer st.Close()
	st.BindBlob(1, []byte(fillKey(0)))
	if !st.Step() {
		if err := st.Err(); err != nil {
			return err
		}
		return errors.New("bare read: key not found")
	}
	if n := len(st.ColumnRawBlob(0)); n != FillValueSize {
		return fmt.Errorf("bare read: %d bytes, want %d", n, FillValueSize)
	}
	return st.Reset()
}

// NaiveCreate is the baseline of object creation: build a new database the
// straightforward way (open, WAL, schema, one durable insert, close).
func NaiveCreate(path string) error {
	c, err := sqlite3.Open(path)
	if err != nil {
		return err
	}
	err = c.Exec(`PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
		CREATE TABLE kv(k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID;
		INSERT INTO kv VALUES (x'6e', x'01')`)
	return errors.Join(err, c.Close())
}

// CreateFiles is the filesystem's ceiling for object creation: the two new
// files a created object gets, the database (written from template) and its
// WAL (a 32-byte header), with no SQLite and no fsync.
func CreateFiles(path string, template []byte) error {
	if err := writeNew(path, template); err != nil {
		return err
	}
	return writeNew(path+"-wal", template[:32])
}

func writeNew(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	return errors.Join(err, f.Close())
}
