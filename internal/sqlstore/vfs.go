package sqlstore

import (
	"net/url"
	"path/filepath"

	"github.com/ncruces/go-sqlite3/vfs"
)

// vfsName is the VFS object databases are opened with: the operating
// system's, except that a database file reports IOCAP_SEQUENTIAL.
//
// Why: when SQLite starts a new WAL (a new object, a reopened one, or a
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
	if err != nil || flags&vfs.OPEN_MAIN_DB == 0 {
		return f, fl, err
	}
	return &sequentialFile{f}, fl, nil
}

// sequentialFile is a main database file that reports IOCAP_SEQUENTIAL. It
// forwards the optional file controls of the file it wraps (not shared
// memory: object databases use exclusive locking, which needs none).
type sequentialFile struct{ vfs.File }

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
