// Package sqlstore is the storage of one object: a private SQLite database
// reached through the native ncruces/go-sqlite3 API, with a KV table and user
// SQL over it, lazy transactions and savepoints, and an authorizer that keeps
// user SQL away from the internal tables and transaction control.
//
// A Store is owned by one object and used by one goroutine at a time (the one
// holding the object's input gate). It opens its database on first use and
// creates the file only on the first write, from a template, so an object
// that never writes never gets a file.
//
// The executor drives transactions: BeginTurn before each turn of an event,
// EndTurn after it (commit = release the turn's savepoint, otherwise roll it
// back), and CommitBatch once per batch of events. Writes open the batch
// transaction and the turn's savepoint lazily, so events that only read pay
// for neither.
package sqlstore

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/ncruces/go-sqlite3"
)

// Synchronous is the SQLite synchronous setting for object databases.
type Synchronous int

const (
	// Normal writes a commit to the WAL without fsync; durability comes from
	// the node's barrier.
	Normal Synchronous = iota
	// Full fsyncs the WAL at every commit (one sync per commit, the baseline).
	Full
)

// CheckpointPages is the WAL size in pages after which a commit is followed
// by a checkpoint. SQLite's default is 1000; ours is smaller on purpose:
// after a checkpoint the next commit writes the WAL from its start again,
// so an object that commits a page or two at a time keeps rewriting the
// blocks of a small WAL instead of appending to a growing file. Rewriting
// allocated blocks is what keeps the node's sync rounds cheap: appending
// costs the filesystem a block allocation and an inode write per file per
// round. Each checkpoint costs two fsyncs and a write of every page the
// WAL changed, which objects that change many pages (a session shard's
// growing tables) feel at 64; 256 is the compromise measured in
// docs/benchmarks.md (HTTP API side by side, "What changed from the
// profiles").
const CheckpointPages = 256

// Config is shared by every store of a runtime.
type Config struct {
	Synchronous Synchronous
	// Template is the bytes of an empty object database (see NewTemplate).
	Template []byte
	// Schema is the class schema the template was built with (see
	// NewTemplate): DeleteAll runs it again, so the object is left as a
	// new one is born.
	Schema string
	// Dirs remembers directories known to exist, so creating a file in an
	// existing fan-out directory costs no mkdir.
	Dirs *DirCache
	// OnCheckpointError is told when a checkpoint after a commit fails
	// (the commit stands; the checkpoint is tried again later).
	OnCheckpointError func(path string, err error)
	// Scratch lends in-memory databases for read-only SQL on objects with
	// no file yet; nil makes a new one each time.
	Scratch *ScratchPool
}

// Store is the database of one object.
type Store struct {
	cfg  *Config
	path string

	conn           *sqlite3.Conn // nil until first use
	modulesReady   bool          // conn has the extensions its virtual tables need (see readyModules)
	checked        bool          // exists is known
	exists         bool          // the file is on disk
	created        bool          // the file was created since the last TakeCreated
	scratch        *sqlite3.Conn // in-memory template copy for read-only SQL on a virgin object, for the turn
	scratchTainted bool          // a PRAGMA ran on scratch: close it instead of giving it back

	inTurn   bool
	txOpen   bool     // BEGIN executed for the current batch
	pending  []string // savepoints requested but not yet executed (lazy)
	open     []string // savepoints executed, innermost last
	txTurn   bool     // open[0] is the batch transaction itself, not a savepoint (see writer)
	walPages int      // WAL size after the last commit
	wrote    bool     // the WAL hook fired since the last CommitBatch
	broken   error

	stmts   map[string]*sqlite3.Stmt // internal statements
	user    *stmtCache               // user statements
	cursors []*Cursor                // open cursors of the current turn
	epoch   uint64                   // counts closeCursors: a cursor of an older epoch is closed
	auth    authorizer
}

// New returns the store of the database at path. It does no I/O: the file
// is looked for on first use.
func New(cfg *Config, path string) *Store {
	return &Store{cfg: cfg, path: path, stmts: map[string]*sqlite3.Stmt{}, user: newStmtCache(64)}
}

// Exists reports whether the database file exists.
func (s *Store) Exists() (bool, error) {
	if s.checked {
		return s.exists, nil
	}
	switch fi, err := os.Stat(s.path); {
	case err == nil && fi.Size() < int64(len(s.cfg.Template)):
		if err := s.repairCreate(fi.Size()); err != nil {
			return false, err
		}
		s.exists = true
	case err == nil:
		s.exists = true
	case errors.Is(err, fs.ErrNotExist):
	default:
		return false, fmt.Errorf("stat %s: %w", s.path, err)
	}
	s.checked = true
	return s.exists, nil
}

// Path returns the database file's path.
func (s *Store) Path() string { return s.path }

// IsOpen reports whether the database connection is open.
func (s *Store) IsOpen() bool { return s.conn != nil }

// TakeCreated reports whether the file was created since the last call, so
// the caller can make the new directory entry durable.
func (s *Store) TakeCreated() bool {
	c := s.created
	s.created = false
	return c
}

// KeepWALBytes is the largest WAL that Evict leaves in place instead of
// checkpointing: 64 frames of 4 KiB pages and their headers, plus the WAL
// header.
const KeepWALBytes = 32 + 64*(24+4096)

// Evict closes the database of an object leaving memory. A WAL of at most
// KeepWALBytes stays as it is: no checkpoint (which fsyncs the WAL and the
// database), no unlink, and the next activation opens the same WAL instead
// of creating a new file. Its frames are durable already: an object is
// evicted only once every commit's sync round has returned. SQLite replays
// it when the object is next opened, as after a crash. A larger WAL is
// checkpointed into the database and removed, as by Close.
func (s *Store) Evict() error {
	if s.conn != nil && s.broken == nil {
		if fi, err := os.Stat(s.path + "-wal"); err == nil && fi.Size() <= KeepWALBytes {
			if _, err := s.conn.Config(sqlite3.DBCONFIG_NO_CKPT_ON_CLOSE, true); err != nil {
				return s.fail(fmt.Errorf("close %s: %w", s.path, err))
			}
		}
	}
	return s.Close()
}

// Close closes the database. SQLite checkpoints the WAL into the database
// file and removes the WAL.
func (s *Store) Close() error {
	s.closeCursors()
	var errs []error
	errs = append(errs, s.releaseScratch())
	if s.conn != nil {
		for _, st := range s.stmts {
			st.Close()
		}
		s.user.closeAll()
		s.stmts = map[string]*sqlite3.Stmt{}
		errs = append(errs, s.conn.Close())
		s.conn = nil
	}
	s.txOpen, s.pending, s.open, s.txTurn = false, nil, nil, false
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close %s: %w", s.path, err)
	}
	return nil
}

// BeginTurn starts a turn of an event: the unit a panic undoes.
func (s *Store) BeginTurn() {
	s.inTurn = true
	s.pending = append(s.pending[:0], "e")
	s.open, s.txTurn = s.open[:0], false
}

// EndTurn ends the current turn. With keep, the turn's writes join the batch
// transaction; otherwise they are rolled back. Cursors of the turn are closed.
func (s *Store) EndTurn(keep bool) error {
	s.closeCursors()
	if err := s.releaseScratch(); err != nil {
		return err
	}
	s.inTurn = false
	s.pending = s.pending[:0]
	if len(s.open) == 0 {
		return nil
	}
	outer := s.open[0]
	s.open = s.open[:0]
	if s.txTurn {
		s.txTurn = false
		if !keep {
			if err := s.execInternal("ROLLBACK"); err != nil {
				return s.fail(err)
			}
			s.txOpen = false
		}
		return nil
	}
	if !keep {
		if err := s.execInternal("ROLLBACK TO " + outer); err != nil {
			return s.fail(err)
		}
	}
	if err := s.execInternal("RELEASE " + outer); err != nil {
		return s.fail(err)
	}
	return nil
}

// CommitBatch commits the batch transaction, if one was opened. It reports
// whether the commit wrote to the WAL, which is when it needs a sync before
// its results may leave.
func (s *Store) CommitBatch() (wrote bool, err error) {
	if s.broken != nil {
		return false, s.broken
	}
	if !s.txOpen {
		return false, nil
	}
	s.txOpen = false
	if err := s.execInternal("COMMIT"); err != nil {
		s.rollbackAll()
		return false, s.fail(fmt.Errorf("commit %s: %w", s.path, err))
	}
	wrote, s.wrote = s.wrote, false
	return wrote, nil
}

// Checkpoint copies the WAL into the database once it holds CheckpointPages
// pages, so that the next commit writes the WAL from its start. The
// executor calls it after a batch's results have gone to the sync round:
// the checkpoint's two fsyncs then delay the object's next batch, not the
// results of this one.
//
// The commits are done whatever happens here: a failed checkpoint leaves
// them in the WAL, where SQLite reads them and a restart replays them. It
// is reported and tried again after the next commit; the WAL grows
// meanwhile.
func (s *Store) Checkpoint() {
	if s.conn == nil || s.broken != nil || s.txOpen || s.walPages < CheckpointPages {
		return
	}
	if _, _, err := s.conn.WALCheckpoint("main", sqlite3.CHECKPOINT_PASSIVE); err != nil {
		if s.cfg.OnCheckpointError != nil {
			s.cfg.OnCheckpointError(s.path, err)
		}
		return
	}
	s.walPages = 0
}

// RollbackBatch discards the batch transaction.
func (s *Store) RollbackBatch() {
	s.closeCursors()
	s.rollbackAll()
}

func (s *Store) rollbackAll() {
	if s.conn != nil && !s.conn.GetAutocommit() {
		s.conn.Exec("ROLLBACK")
	}
	s.txOpen, s.pending, s.open, s.wrote, s.txTurn = false, s.pending[:0], s.open[:0], false, false
}

// Err returns the error that broke the store, if any. A broken store must be
// closed and reopened; its uncommitted writes are lost.
func (s *Store) Err() error { return s.broken }

func (s *Store) fail(err error) error {
	if s.broken == nil {
		s.broken = err
	}
	return err
}

// conn returns the connection for a read, or nil for a virgin object whose
// file does not exist (every read then finds nothing).
func (s *Store) reader() (*sqlite3.Conn, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if s.conn != nil {
		return s.conn, nil
	}
	if ok, err := s.Exists(); err != nil || !ok {
		return nil, err
	}
	if s.conn == nil {
		if err := s.openConn(); err != nil {
			return nil, err
		}
	}
	return s.conn, nil
}

// writer returns the connection for a write, creating the file if needed and
// opening the batch transaction and the pending savepoints.
func (s *Store) writer() (*sqlite3.Conn, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if s.conn == nil {
		ok, err := s.Exists()
		if err != nil {
			return nil, err
		}
		if !ok {
			if err := s.create(); err != nil {
				return nil, err
			}
		}
		if err := s.openConn(); err != nil {
			return nil, err
		}
		// A copy of a template without virtual tables: none to get ready
		// for (see readyModules).
		s.modulesReady = !ok && !mayHaveVirtualTables(s.cfg.Schema)
	}
	if !s.txOpen {
		if err := s.execInternal("BEGIN"); err != nil {
			return nil, s.fail(err)
		}
		s.txOpen = true
		if len(s.open) == 0 && len(s.pending) > 0 {
			// The turn's first write opens the batch's transaction: until
			// the turn ends, the transaction holds this turn's writes and
			// nothing else, so it serves as the turn's savepoint (EndTurn
			// rolls it back whole if the turn fails). Two statements fewer
			// for the usual batch of one event.
			s.open = append(s.open, s.pending[0])
			s.pending = s.pending[:copy(s.pending, s.pending[1:])] // in place: keeps its capacity
			s.txTurn = true
		}
	}
	for _, name := range s.pending {
		if err := s.execInternal("SAVEPOINT " + name); err != nil {
			return nil, s.fail(err)
		}
		s.open = append(s.open, name)
	}
	s.pending = s.pending[:0]
	return s.conn, nil
}

func (s *Store) check() error {
	if s.broken != nil {
		return s.broken
	}
	if !s.inTurn {
		return ErrOutsideEvent
	}
	return nil
}

// create writes the template to the object's path. The file and its
// directory entry are not synced here: the commit that follows is made
// durable, together with them, by the node's barrier.
func (s *Store) create() error {
	dir := filepath.Dir(s.path)
	if err := s.cfg.Dirs.MkdirAll(dir); err != nil {
		return s.fail(err)
	}
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return s.fail(fmt.Errorf("create %s: %w", s.path, err))
	}
	_, err = f.Write(s.cfg.Template)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(s.path)
		return s.fail(fmt.Errorf("create %s: %w", s.path, err))
	}
	s.exists, s.checked, s.created = true, true, true
	return nil
}

// repairCreate finishes a file whose creation a power loss cut short: the
// directory entry reached the disk, not all of the template copied into it.
// Such a file is empty or a prefix of the template; the object's commits,
// if any survived, are all in its WAL (the file was never checkpointed, or
// it would be whole), and they apply to the template's pages. A short file
// that is not a prefix of the template is left for SQLite to report.
func (s *Store) repairCreate(size int64) error {
	f, err := os.OpenFile(s.path, os.O_RDWR, 0)
	if err != nil {
		return s.fail(fmt.Errorf("repair %s: %w", s.path, err))
	}
	defer f.Close()
	head := make([]byte, size)
	if _, err := io.ReadFull(f, head); err != nil {
		return s.fail(fmt.Errorf("repair %s: %w", s.path, err))
	}
	if !bytes.Equal(head, s.cfg.Template[:size]) {
		return nil
	}
	if _, err := f.WriteAt(s.cfg.Template[size:], size); err != nil {
		return s.fail(fmt.Errorf("repair %s: %w", s.path, err))
	}
	s.created = true // synced with the object's next commit, like a new file
	return nil
}

func (s *Store) openConn() error {
	c, err := openConn(uri(s.path), s.cfg.Synchronous)
	if err != nil {
		return s.fail(fmt.Errorf("open %s: %w", s.path, err))
	}
	s.conn, s.modulesReady = c, false
	c.WALHook(func(_ *sqlite3.Conn, _ string, pages int) error {
		s.wrote = true
		s.walPages = pages
		return nil
	})
	if err := s.auth.install(c); err != nil {
		c.Close()
		s.conn = nil
		return s.fail(err)
	}
	return nil
}

// openConn opens a database (a URI of the durable VFS) in the mode every
// object uses: exclusive locking (one connection per file, so no
// shared-memory WAL index) and WAL.
func openConn(uri string, sync Synchronous) (*sqlite3.Conn, error) {
	c, err := sqlite3.OpenFlags(uri, sqlite3.OPEN_READWRITE|sqlite3.OPEN_URI|sqlite3.OPEN_EXRESCODE)
	if err != nil {
		return nil, err
	}
	mode := "NORMAL"
	if sync == Full {
		mode = "FULL"
	}
	if err := c.Exec("PRAGMA locking_mode=EXCLUSIVE; PRAGMA synchronous=" + mode); err != nil {
		c.Close()
		return nil, err
	}
	setLimits(c)
	return c, nil
}

// recordOverhead bounds what SQLite adds to a row's values when it encodes
// them as one record (a header of a few varints). LIMIT_LENGTH applies to
// that record too, so without it a key and a value both at their limits
// would not fit in a KV row.
const recordOverhead = 64

// setLimits applies the SQL limits of Cloudflare's SQLite-backed objects,
// and SQLite's defensive mode: SQL cannot write to the shadow tables of a
// virtual table (FTS5's, R*Tree's), which would leave it unusable and
// impossible to drop, nor to the schema or the raw pages.
func setLimits(c *sqlite3.Conn) {
	c.Config(sqlite3.DBCONFIG_DEFENSIVE, true)
	c.Limit(sqlite3.LIMIT_LENGTH, MaxValueSize+MaxKeySize+recordOverhead)
	c.Limit(sqlite3.LIMIT_SQL_LENGTH, MaxSQLLength)
	c.Limit(sqlite3.LIMIT_COLUMN, MaxColumns)
	c.Limit(sqlite3.LIMIT_VARIABLE_NUMBER, MaxBoundParameters)
	c.Limit(sqlite3.LIMIT_FUNCTION_ARG, 32)
	c.Limit(sqlite3.LIMIT_LIKE_PATTERN_LENGTH, 50)
	c.Limit(sqlite3.LIMIT_ATTACHED, 0)
}

// execInternal runs one of the transaction-control statements, prepared
// once per connection: they run several times per event.
func (s *Store) execInternal(sql string) error {
	st, err := s.prepared(sql)
	if err != nil {
		return err
	}
	return st.Exec()
}

// prepared returns a cached internal statement.
func (s *Store) prepared(sql string) (*sqlite3.Stmt, error) {
	if st := s.stmts[sql]; st != nil {
		return st, nil
	}
	st, _, err := s.conn.PrepareFlags(sql, sqlite3.PREPARE_PERSISTENT)
	if err != nil {
		return nil, fmt.Errorf("prepare %q: %w", sql, err)
	}
	s.stmts[sql] = st
	return st, nil
}

// Transaction runs fn in a nested savepoint: an error from fn (or a panic)
// rolls back fn's writes only.
func (s *Store) Transaction(fn func() error) (err error) {
	if err := s.check(); err != nil {
		return err
	}
	// Named by depth, so the statements that open and close savepoints are
	// a small set, prepared once (SQLite resolves a repeated name to the
	// innermost savepoint).
	depth := len(s.open) + len(s.pending) + 1
	name := "t" + strconv.Itoa(depth)
	s.pending = append(s.pending, name)
	ok := false
	defer func() {
		if s.broken != nil {
			return
		}
		// Savepoints deeper than ours were closed by fn's own Transaction
		// calls; ours is either still pending or open at index depth-1.
		if len(s.open) >= depth {
			s.open = s.open[:depth-1]
			if !ok {
				if rerr := s.execInternal("ROLLBACK TO " + name); rerr != nil && err == nil {
					err = s.fail(rerr)
				}
			}
			if rerr := s.execInternal("RELEASE " + name); rerr != nil && err == nil {
				err = s.fail(rerr)
			}
			return
		}
		s.pending = s.pending[:depth-len(s.open)-1]
	}()
	err = fn()
	ok = err == nil
	return err
}

// InTransaction reports whether a Transaction is running in the current turn.
func (s *Store) InTransaction() bool {
	return len(s.open)+len(s.pending) > 1
}
