// Package barrier makes the commits of many objects durable in one sync
// round: the node-level group commit.
//
// Object databases commit to their WAL without fsync (synchronous=NORMAL).
// Before an event's result may leave, its commit must be on disk, so the
// executor hands the barrier a callback; the barrier runs sync rounds one
// after another, and each round covers every request that arrived before it
// started. Requests that arrive during a round wait for the next one, so
// under load one sync serves every object that committed meanwhile.
package barrier

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Method is how a round makes writes durable.
type Method int

const (
	// Syncfs calls syncfs(2) once on the data directory's filesystem: one
	// system call however many files are dirty. Measured fastest here (see
	// docs/benchmarks.md) and the default.
	Syncfs Method = iota
	// Fdatasync calls fdatasync(2) on every dirty file (and fsync on new
	// directories), concurrently. It syncs only our files, which matters on a
	// filesystem shared with other busy processes.
	Fdatasync
)

func (m Method) String() string {
	switch m {
	case Syncfs:
		return "syncfs"
	case Fdatasync:
		return "fdatasync"
	}
	return fmt.Sprintf("Method(%d)", int(m))
}

// ErrClosed is returned for requests made after Close.
var ErrClosed = errors.New("barrier closed")

// ErrFailed is returned for every request once a sync round failed: the
// node must be restarted before anything it writes counts as durable.
var ErrFailed = errors.New("durability barrier failed; restart the process")

// Barrier runs sync rounds.
type Barrier struct {
	method Method
	dir    *os.File

	mu      sync.Mutex
	waiting []func(error)
	files   map[string]struct{}
	wake    chan struct{}
	closed  bool
	failed  error // set by the first failed round; sticky
	done    chan struct{}
	err     atomic.Pointer[error] // failed, for Err without the lock

	// BeforeRound, when set, is called at the start of every round with the
	// round's number and how many requests it covers; it may block, which
	// holds the round open. For tests.
	BeforeRound func(round uint64, requests int)
	// SyncFunc, when set, replaces the method's sync (a test simulating
	// power loss snapshots the data directory here).
	SyncFunc func() error
	// AfterRound, when set, is called after every round with its duration.
	AfterRound func(d time.Duration, requests int, err error)

	rounds   atomic.Uint64
	requests atomic.Uint64
}

// New starts a barrier for the filesystem holding dir.
func New(dir string, method Method) (*Barrier, error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("barrier: %w", err)
	}
	b := &Barrier{method: method, dir: d, files: map[string]struct{}{}, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go b.loop()
	return b, nil
}

// Method returns the barrier's sync method.
func (b *Barrier) Method() Method { return b.method }

// Sync calls done once every write made before the call is durable, or with
// the error of the round that failed to make it so. files names what the
// caller wrote (WAL files, new database files, new directories); the
// Fdatasync method syncs exactly those. done runs on the barrier's
// goroutine and must not block.
func (b *Barrier) Sync(files []string, done func(error)) {
	b.mu.Lock()
	if b.closed || b.failed != nil {
		err := cmp.Or(b.failed, ErrClosed)
		b.mu.Unlock()
		done(err)
		return
	}
	b.waiting = append(b.waiting, done)
	if b.method == Fdatasync {
		for _, f := range files {
			b.files[f] = struct{}{}
		}
	}
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// Err returns the error of the first round that failed, or nil. Once it is
// set, nothing the node wrote since the last good round can be trusted to
// be durable, and every later Sync fails with it.
func (b *Barrier) Err() error {
	if p := b.err.Load(); p != nil {
		return *p
	}
	return nil
}

// Stats returns how many rounds ran and how many requests they covered.
func (b *Barrier) Stats() (rounds, requests uint64) {
	return b.rounds.Load(), b.requests.Load()
}

// Close runs a last round for pending requests and stops the barrier.
func (b *Barrier) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
	<-b.done
	return b.dir.Close()
}

func (b *Barrier) loop() {
	defer close(b.done)
	for {
		b.mu.Lock()
		waiting, files, closed := b.waiting, b.files, b.closed
		b.waiting = nil
		if len(files) > 0 {
			b.files = map[string]struct{}{}
		}
		b.mu.Unlock()
		if len(waiting) == 0 {
			if closed {
				return
			}
			<-b.wake
			continue
		}
		round := b.rounds.Add(1)
		if b.BeforeRound != nil {
			b.BeforeRound(round, len(waiting))
		}
		start := time.Now()
		err := b.sync(files)
		if err != nil {
			// After a failed sync the kernel may have dropped the pages it
			// could not write, while reads still see them: nothing written
			// since can be trusted to be durable, so every later request
			// fails too, until the process restarts and reads the disk.
			err = fmt.Errorf("%w: %w", ErrFailed, err)
			b.mu.Lock()
			if b.failed == nil {
				b.failed = err
				b.err.Store(&err)
			}
			b.mu.Unlock()
		}
		if b.AfterRound != nil {
			b.AfterRound(time.Since(start), len(waiting), err)
		}
		b.requests.Add(uint64(len(waiting)))
		for _, done := range waiting {
			done(err)
		}
	}
}

func (b *Barrier) sync(files map[string]struct{}) error {
	if b.SyncFunc != nil {
		return b.SyncFunc()
	}
	if b.method == Syncfs {
		if err := unix.Syncfs(int(b.dir.Fd())); err != nil {
			return fmt.Errorf("syncfs: %w", err)
		}
		return nil
	}
	return syncFiles(files)
}

// syncFiles fdatasyncs files concurrently, with a bounded number of workers.
func syncFiles(files map[string]struct{}) error {
	const workers = 32
	paths := make(chan string)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range min(workers, len(files)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var first error
			for p := range paths {
				if err := syncPath(p); err != nil && first == nil {
					first = err
				}
			}
			errs <- first
		}()
	}
	for p := range files {
		paths <- p
	}
	close(paths)
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

func syncPath(p string) error {
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil // a WAL removed by a checkpoint on close: its data is in the database, synced
	}
	if err != nil {
		return fmt.Errorf("sync %s: %w", p, err)
	}
	defer f.Close()
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		return fmt.Errorf("fdatasync %s: %w", p, err)
	}
	return nil
}
