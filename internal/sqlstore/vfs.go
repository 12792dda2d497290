package sqlstore

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"sync"

	"github.com/ncruces/go-sqlite3/vfs"
)

// vfsName is the VFS object databases are opened with: the operating
// system's, except that a database file reports IOCAP_SEQUENTIAL and its
// WAL gathers each commit's writes into one (walFile, below).
//
// Why SEQUENTIAL: when SQLite starts a new WAL (a new object, a reopened one, or a
// restart after a checkpoint) it fsyncs the WAL header (and, for a new
// file, its directory) before the first commit, even with
// synchronous=NORMAL: one or two fsyncs on the object's own goroutine per
// activation that writes, outside the node's barrier. SEQUENTIAL tells
// SQLite that writes reach the disk in order, so it skips that sync.
//
// Why that is safe here: the header sync exists so that a checkpoint never
// copies frames of a WAL whose header could still be lost, after which old,
// already-checkpointed frames could be replayed over newer pages. With
// synchronous=NORMAL every checkpoint fsyncs the WAL (and a new WAL's
// directory, on its first sync) before copying anything, so the header is
// durable by then anyway; and no result leaves before the barrier has
// synced the header, the frames and the directory entries of its commit.
// Frames whose header was lost are simply invalid, as any unsynced write.
const vfsName = "durable"

func init() {
	vfs.Register(vfsName, sequentialVFS{vfs.Find("").(vfs.VFSFilename)})
}

// uri returns the SQLite URI that opens path with the durable VFS.
func uri(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	return (&url.URL{Scheme: "file", Path: path, RawQuery: "vfs=" + vfsName}).String()
}

type sequentialVFS struct{ vfs.VFSFilename }

func (v sequentialVFS) OpenFilename(name *vfs.Filename, flags vfs.OpenFlag) (vfs.File, vfs.OpenFlag, error) {
	f, fl, err := v.VFSFilename.OpenFilename(name, flags)
	switch {
	case err != nil:
		return f, fl, err
	case flags&vfs.OPEN_MAIN_DB != 0:
		return &sequentialFile{File: f}, fl, nil
	case flags&vfs.OPEN_WAL != 0:
		db := mainFile(name.DatabaseFile())
		if db == nil { // not one of ours: leave it as it is
			return f, fl, err
		}
		w := &walFile{File: f, db: db}
		db.wal = w
		return w, fl, nil
	}
	return f, fl, err
}

// mainFile finds our main database file under the wrappers ncruces puts
// around what the VFS returns (its checksum layer).
func mainFile(f vfs.File) *sequentialFile {
	for f != nil {
		if db, ok := f.(*sequentialFile); ok {
			return db
		}
		u, ok := f.(vfs.FileUnwrap)
		if !ok {
			return nil
		}
		f = u.Unwrap()
	}
	return nil
}

// sequentialFile is a main database file that reports IOCAP_SEQUENTIAL. It
// forwards the optional file controls of the file it wraps (not shared
// memory: object databases use exclusive locking, which needs none), and
// writes out its WAL's gathered frames when a commit ends.
type sequentialFile struct {
	vfs.File
	wal *walFile // the open WAL, if any
}

// CommitPhaseTwo is called by SQLite at the end of every commit (the
// SQLITE_FCNTL_COMMIT_PHASETWO file control): the commit's frames go to
// the WAL file in one write. An error fails the commit.
func (f *sequentialFile) CommitPhaseTwo() error {
	if f.wal == nil {
		return nil
	}
	return f.wal.flush()
}

func (f *sequentialFile) DeviceCharacteristics() vfs.DeviceCharacteristic {
	return f.File.DeviceCharacteristics() | vfs.IOCAP_SEQUENTIAL
}

func (f *sequentialFile) Unwrap() vfs.File { return f.File }

func (f *sequentialFile) LockState() vfs.LockLevel {
	if l, ok := f.File.(vfs.FileLockState); ok {
		return l.LockState()
	}
	return vfs.LOCK_EXCLUSIVE + 1 // unknown
}

func (f *sequentialFile) SizeHint(size int64) error {
	if h, ok := f.File.(vfs.FileSizeHint); ok {
		return h.SizeHint(size)
	}
	return nil
}

func (f *sequentialFile) HasMoved() (bool, error) {
	if m, ok := f.File.(vfs.FileHasMoved); ok {
		return m.HasMoved()
	}
	return false, nil
}

func (f *sequentialFile) PowersafeOverwrite() bool {
	if p, ok := f.File.(vfs.FilePowersafeOverwrite); ok {
		return p.PowersafeOverwrite()
	}
	return false
}

func (f *sequentialFile) SetPowersafeOverwrite(psow bool) {
	if p, ok := f.File.(vfs.FilePowersafeOverwrite); ok {
		p.SetPowersafeOverwrite(psow)
	}
}

func (f *sequentialFile) PersistWAL() bool {
	if p, ok := f.File.(vfs.FilePersistWAL); ok {
		return p.PersistWAL()
	}
	return false
}

func (f *sequentialFile) SetPersistWAL(keep bool) {
	if p, ok := f.File.(vfs.FilePersistWAL); ok {
		p.SetPersistWAL(keep)
	}
}

// walFile is an object's WAL. It gathers the writes SQLite makes to the end
// of the WAL — two per frame, the 24-byte frame header and the page — and
// hands them to the file as one write when the commit ends, or before
// anything else touches the file (a read, a write elsewhere, a sync, a
// size, a truncate, close). A small commit then costs one pwrite instead
// of two per page.
//
// Nothing changes for SQLite: every read and size sees every write made
// before it. For a crash, a commit whose frames were still gathered is a
// commit that had not finished writing, which SQLite already handles (its
// frames are not in the WAL, or not all of them, and the commit is not
// replayed). No result leaves before the commit's end, the write, and the
// node's sync round.
//
// A failed write is sticky: every later operation fails with it, so SQLite
// cannot read frames it believes it wrote from a file that lacks them (a
// checkpoint would copy garbage into the database). The store then breaks,
// is closed, and its next activation recovers from what the file holds.
type walFile struct {
	vfs.File
	db  *sequentialFile
	buf *[]byte // gathered writes; nil when there are none
	off int64   // file offset of (*buf)[0]
	err error   // the write that failed, if one did
}

// walGatherMax bounds a gathered write: a larger commit is written in
// pieces of about this size.
const walGatherMax = 1 << 20

// walBuffers lends the gathering buffers, so an idle object holds none.
var walBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 2*(24+4096)); return &b }}

func (f *walFile) WriteAt(p []byte, off int64) (int, error) {
	if f.err != nil {
		return 0, f.err
	}
	if f.buf != nil && (off != f.off+int64(len(*f.buf)) || len(*f.buf)+len(p) > walGatherMax) {
		if err := f.flush(); err != nil {
			return 0, err
		}
	}
	if f.buf == nil {
		f.buf = walBuffers.Get().(*[]byte)
		f.off = off
	}
	*f.buf = append(*f.buf, p...)
	return len(p), nil
}

// flush writes the gathered writes to the file.
func (f *walFile) flush() error {
	if f.err != nil {
		return f.err
	}
	if f.buf == nil {
		return nil
	}
	b := f.buf
	_, err := f.File.WriteAt(*b, f.off)
	if err != nil {
		f.err = fmt.Errorf("write WAL: %w", err)
		return f.err
	}
	f.buf = nil
	if cap(*b) <= 64<<10 { // keep the pool's buffers small
		*b = (*b)[:0]
		walBuffers.Put(b)
	}
	return nil
}

func (f *walFile) ReadAt(p []byte, off int64) (int, error) {
	if err := f.flush(); err != nil {
		return 0, err
	}
	return f.File.ReadAt(p, off)
}

func (f *walFile) Truncate(size int64) error {
	if err := f.flush(); err != nil {
		return err
	}
	return f.File.Truncate(size)
}

func (f *walFile) Sync(flags vfs.SyncFlag) error {
	if err := f.flush(); err != nil {
		return err
	}
	return f.File.Sync(flags)
}

func (f *walFile) Size() (int64, error) {
	if err := f.flush(); err != nil {
		return 0, err
	}
	return f.File.Size()
}

// Close writes what is gathered (unless a write failed) and closes the file.
func (f *walFile) Close() error {
	err := f.flush()
	if f.db.wal == f {
		f.db.wal = nil
	}
	return errors.Join(err, f.File.Close())
}
