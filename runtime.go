package durable

import (
	"cmp"
	"container/heap"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/durableobjects/durable/internal/actor"
	"github.com/durableobjects/durable/internal/alarm"
	"github.com/durableobjects/durable/internal/barrier"
	"github.com/durableobjects/durable/internal/hibernate"
	"github.com/durableobjects/durable/internal/node"
	"github.com/durableobjects/durable/internal/sqlstore"
	"golang.org/x/sys/unix"
)

// Defaults of the Runtime's tunables.
const (
	DefaultIdleTimeout    = 10 * time.Second
	DefaultMaxActive      = 10_000 // ~325 KiB of SQLite memory each while open
	DefaultMaxQueue       = 1_000
	DefaultMaxBatch       = 256
	DefaultMaxRequestBody = 32 << 20
)

// Durability selects how a commit is made durable before its results leave.
type Durability int

const (
	// DurabilityBarrier commits to the WAL without fsync and makes every
	// object's pending commits durable in one node-level sync round (the
	// default; see doc.go).
	DurabilityBarrier Durability = iota
	// DurabilityPerCommit fsyncs every commit of every object on its own
	// (synchronous=FULL): the simple design, capped by the disk's fsync rate.
	DurabilityPerCommit
)

// SyncMethod selects how a barrier round syncs.
type SyncMethod = barrier.Method

// Sync methods of the durability barrier.
const (
	SyncSyncfs    = barrier.Syncfs
	SyncFdatasync = barrier.Fdatasync
)

// Runtime runs objects. Set its fields, register classes, then Open.
// Fields must not change after Open.
type Runtime struct {
	// Dir is the data directory. Required.
	Dir string
	// Clock is the source of time; SystemClock if nil.
	Clock Clock
	// Logger receives the runtime's logs; slog.DiscardHandler if nil.
	Logger *slog.Logger
	// IdleTimeout is how long an object stays in memory with no work.
	IdleTimeout time.Duration
	// MaxActive caps the objects in memory; past it the least recently used
	// idle ones are evicted early, by a pass that runs beside new
	// activations (a soft cap: a burst, or busy objects, may briefly exceed
	// it). Open lowers it to what the open-file limit (RLIMIT_NOFILE)
	// allows, three descriptors per object.
	MaxActive int
	// MaxQueue bounds each object's queue; past it calls fail fast with
	// ErrOverloaded.
	MaxQueue int
	// StubRetry is how the stubs of Namespace.Get and GetByName retry calls
	// refused with ErrOverloaded (which had no effect): DefaultRetry when
	// zero. Retry{Attempts: 1} turns retrying off, as durable serve does:
	// its HTTP API answers 503 at once and leaves retrying to its clients.
	// Stub.WithRetry overrides it for one stub.
	StubRetry Retry
	// MaxBatch bounds how many queued events commit together.
	MaxBatch int
	// MaxRequestBody bounds Fetch request and response bodies.
	MaxRequestBody int64
	// Durability and SyncMethod choose how commits are made durable.
	Durability Durability
	SyncMethod SyncMethod
	// MaxWebSocketMessage bounds a received WebSocket message; bigger ones
	// close the socket with 1009.
	MaxWebSocketMessage int64
	// MaxWebSockets bounds the sockets of one object.
	MaxWebSockets int
	// WebSocketSendQueue and WebSocketSendBytes bound what waits to be
	// written to one socket; past them the socket is closed with 1008.
	WebSocketSendQueue int
	WebSocketSendBytes int
	// WebSocketWriteTimeout bounds one write to a socket.
	WebSocketWriteTimeout time.Duration
	// WebSocketOriginPatterns are the browser origins (besides the request's
	// own host) allowed to open WebSockets; see websocket.AcceptOptions.
	WebSocketOriginPatterns []string

	mu         sync.RWMutex
	classes    map[string]*Namespace
	objects    map[objectKey]*object
	opened     bool
	closing    bool
	closed     bool        // Close finished: the runtime cannot open again
	stopping   atomic.Bool // closing, read without mu by every call
	node       *node.DB
	barrier    *barrier.Barrier
	sched      *alarm.Scheduler
	sockets    *hibernate.Registry
	storeCfg   sqlstore.Config
	actorCfg   actor.Config
	loops      *actor.Pool // goroutines for the actors' loops
	janitor    Timer
	janitorRun sync.Mutex
	evictions  chan struct{}  // wakes evictLoop
	stopEvict  chan struct{}  // ends evictLoop
	alarmRuns  sync.WaitGroup // fireAlarm's goroutines, done before the node closes
	closingCh  chan struct{}  // closed by BeginClose
	closeMu    sync.Mutex     // one Close at a time
	closeOnce  sync.Once
	wg         sync.WaitGroup
	stats      stats
}

// closeParallelism is how many databases Close and eviction close at once.
const closeParallelism = 8

type objectKey struct {
	ns string
	id [32]byte
}

// NewRuntime returns a runtime storing its objects under dir, with the
// default settings.
func NewRuntime(dir string) *Runtime {
	return &Runtime{Dir: dir}
}

var classNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Constructor makes the in-memory instance of an object. It runs before the
// object's first event after every activation (first use, eviction, reset).
type Constructor func(st *State) any

// Register adds a class of objects and returns its namespace. The name (1-64
// of A-Z a-z 0-9 _ -) names the class's directory. Register before Open.
func (rt *Runtime) Register(class string, ctor Constructor) (*Namespace, error) {
	if !classNameRE.MatchString(class) {
		return nil, fmt.Errorf("durable: invalid class name %q: want 1-64 of A-Z a-z 0-9 _ -", class)
	}
	if ctor == nil {
		return nil, errors.New("durable: nil constructor")
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.opened {
		return nil, fmt.Errorf("durable: register %q: runtime already open", class)
	}
	if rt.classes == nil {
		rt.classes = map[string]*Namespace{}
	}
	if _, dup := rt.classes[class]; dup {
		return nil, fmt.Errorf("durable: class %q registered twice", class)
	}
	ns := &Namespace{rt: rt, name: class, ctor: ctor}
	rt.classes[class] = ns
	return ns, nil
}

// Namespace returns the namespace of a registered class.
func (rt *Runtime) Namespace(class string) (*Namespace, bool) {
	rt.mu.RLock()
	defer rt.mu.RUnlock()
	ns, ok := rt.classes[class]
	return ns, ok
}

// Open starts the runtime: it locks the data directory (a second runtime on
// the same directory fails with an error naming it), loads the directory's
// secret, and starts the alarm loop, so alarms that came due while nothing
// ran fire now.
func (rt *Runtime) Open() error {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.opened {
		return errors.New("durable: runtime already open")
	}
	if rt.closed {
		return errors.New("durable: runtime was closed; make a new Runtime to open the directory again")
	}
	if rt.Dir == "" {
		return errors.New("durable: Runtime.Dir is required")
	}
	rt.setDefaults()
	rt.capActiveByFiles()
	nd, err := node.Open(rt.Dir, rt.Durability == DurabilityPerCommit)
	if err != nil {
		return fmt.Errorf("durable: %w", err)
	}
	template, err := sqlstore.NewTemplate(rt.Dir, "")
	if err != nil {
		nd.Close()
		return fmt.Errorf("durable: %w", err)
	}
	rt.node = nd
	rt.storeCfg = sqlstore.Config{
		Template: template,
		Dirs:     &sqlstore.DirCache{},
		Scratch:  &sqlstore.ScratchPool{},
		OnCheckpointError: func(path string, err error) {
			rt.Logger.Warn("checkpoint failed; the commits stay in the WAL and the checkpoint is retried", "file", path, "err", err)
		},
	}
	rt.actorCfg = actor.Config{
		MaxQueue: rt.MaxQueue,
		MaxBatch: rt.MaxBatch,
		OnPanic: func(v any, stack []byte) {
			rt.Logger.Error("handler panicked; object reset", "panic", fmt.Sprint(v), "stack", string(stack))
		},
		OnCommit: rt.stats.commit,
	}
	rt.loops = actor.NewPool(actor.DefaultPoolIdle, actor.DefaultPoolMaxIdle)
	rt.actorCfg.Go = rt.loops.Go
	if rt.Durability == DurabilityPerCommit {
		rt.storeCfg.Synchronous = sqlstore.Full
	} else {
		b, err := barrier.New(rt.Dir, rt.SyncMethod)
		if err != nil {
			nd.Close()
			return fmt.Errorf("durable: %w", err)
		}
		b.AfterRound = func(d time.Duration, requests int, err error) {
			rt.stats.syncRound(d, requests, err)
			if err != nil {
				rt.Logger.Error("durability barrier failed: no further write will be acknowledged until the process restarts", "err", err)
			}
		}
		rt.barrier = b
		rt.actorCfg.Sync = b.Sync
		rt.actorCfg.SyncFailed = b.Err
	}
	for _, ns := range rt.classes {
		ns.key = namespaceKey(nd.Secret(), ns.name)
		ns.storeCfg = &rt.storeCfg
		if ns.schema == "" {
			continue
		}
		tmpl, err := sqlstore.NewTemplate(rt.Dir, ns.schema)
		if err != nil {
			rt.closeScratch()
			if rt.barrier != nil {
				rt.barrier.Close()
			}
			nd.Close()
			return fmt.Errorf("durable: class %q: %w", ns.name, err)
		}
		cfg := rt.storeCfg
		cfg.Template, cfg.Schema, cfg.Scratch = tmpl, ns.schema, &sqlstore.ScratchPool{Schema: ns.schema}
		ns.storeCfg = &cfg
	}
	rt.objects = map[objectKey]*object{}
	rt.sockets = hibernate.New(hibernate.Config{
		MaxMessage:     rt.MaxWebSocketMessage,
		MaxSockets:     rt.MaxWebSockets,
		SendQueue:      rt.WebSocketSendQueue,
		SendQueueBytes: rt.WebSocketSendBytes,
		WriteTimeout:   rt.WebSocketWriteTimeout,
		Now:            rt.Clock.Now,
		Deliver:        rt.deliverSocket,
		Logger:         rt.Logger,
	})
	rt.evictions = make(chan struct{}, 1)
	rt.stopEvict = make(chan struct{})
	rt.closingCh = make(chan struct{})
	rt.opened = true
	classes := make([]string, 0, len(rt.classes))
	for name := range rt.classes {
		classes = append(classes, name)
	}
	rt.sched = alarm.Start(alarm.Config{
		Classes: classes,
		DB:      nd,
		Now:     rt.Clock.Now,
		AfterFunc: func(d time.Duration, f func()) func() bool {
			return rt.Clock.AfterFunc(d, f).Stop
		},
		Fire:   rt.fireAlarm,
		Logger: rt.Logger,
	})
	rt.wg.Add(1)
	go rt.evictLoop()
	rt.janitor = rt.Clock.AfterFunc(min(rt.IdleTimeout/4, time.Second), rt.janitorTick)
	return nil
}

func (rt *Runtime) setDefaults() {
	if rt.Clock == nil {
		rt.Clock = SystemClock{}
	}
	if rt.Logger == nil {
		rt.Logger = slog.New(slog.DiscardHandler)
	}
	if rt.IdleTimeout <= 0 {
		rt.IdleTimeout = DefaultIdleTimeout
	}
	if rt.MaxActive <= 0 {
		rt.MaxActive = DefaultMaxActive
	}
	if rt.MaxQueue <= 0 {
		rt.MaxQueue = DefaultMaxQueue
	}
	if rt.MaxBatch <= 0 {
		rt.MaxBatch = DefaultMaxBatch
	}
	if rt.MaxRequestBody <= 0 {
		rt.MaxRequestBody = DefaultMaxRequestBody
	}
	if rt.MaxWebSocketMessage <= 0 {
		rt.MaxWebSocketMessage = DefaultMaxWebSocketMessage
	}
	if rt.MaxWebSockets <= 0 {
		rt.MaxWebSockets = DefaultMaxWebSockets
	}
	if rt.WebSocketSendQueue <= 0 {
		rt.WebSocketSendQueue = DefaultWebSocketSendQueue
	}
	if rt.WebSocketSendBytes <= 0 {
		rt.WebSocketSendBytes = DefaultWebSocketSendBytes
	}
	if rt.WebSocketWriteTimeout <= 0 {
		rt.WebSocketWriteTimeout = DefaultWebSocketWriteTimeout
	}
}

// BeginClose tells objects the runtime is about to close (State.Closing
// returns a closed channel) while calls are still accepted, so handlers that
// wait, such as a lock acquire with a wait time, can give up early. Close
// calls it too.
func (rt *Runtime) BeginClose() {
	rt.mu.RLock()
	ch := rt.closingCh
	rt.mu.RUnlock()
	if ch != nil {
		rt.closeOnce.Do(func() { close(ch) })
	}
}

// filesPerObject is how many file descriptors an object in memory holds
// (its database and WAL), with room for the one being opened.
const filesPerObject = 3

// reservedFiles are descriptors kept for connections and everything else.
const reservedFiles = 4096

// capActiveByFiles lowers MaxActive when the process may not open enough
// files for that many objects: running out of descriptors fails requests
// all over the node, while a lower cap only evicts earlier.
func (rt *Runtime) capActiveByFiles() {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil || lim.Cur == unix.RLIM_INFINITY {
		return
	}
	room := (int64(lim.Cur) - reservedFiles) / filesPerObject
	if room < 64 {
		room = 64
	}
	if int64(rt.MaxActive) > room {
		rt.Logger.Warn("MaxActive lowered to fit the open-file limit", "max_active", room, "wanted", rt.MaxActive, "nofile", lim.Cur)
		rt.MaxActive = int(room)
	}
}

// Close stops intake (new calls fail with ErrClosed), lets queued and
// running events finish and commit, makes every commit durable, closes
// every WebSocket with 1001 (after what was sent to it), closes every
// object's database and releases the data directory. If ctx ends
// first, Close returns its error with objects still open; call it again.
func (rt *Runtime) Close(ctx context.Context) error {
	rt.closeMu.Lock()
	defer rt.closeMu.Unlock()
	rt.mu.Lock()
	if !rt.opened {
		rt.mu.Unlock()
		return nil
	}
	first := !rt.closing
	rt.closing = true
	rt.stopping.Store(true)
	rt.mu.Unlock()
	rt.BeginClose()
	if first {
		rt.sched.Close()
		rt.mu.Lock()
		rt.janitor.Stop()
		rt.mu.Unlock()
	}
	for {
		objs := rt.activeObjects()
		if len(objs) == 0 {
			break
		}
		// Closing a database checkpoints it (three fsyncs): overlap them.
		var wg sync.WaitGroup
		var mu sync.Mutex
		var firstErr error
		sem := make(chan struct{}, closeParallelism)
		for _, o := range objs {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				if err := o.actor.WaitIdle(ctx); err != nil {
					mu.Lock()
					firstErr = cmp.Or(firstErr, err)
					mu.Unlock()
					return
				}
				rt.evict(o)
			}()
		}
		wg.Wait()
		if firstErr != nil {
			return fmt.Errorf("durable: close: %w", firstErr)
		}
	}
	close(rt.stopEvict)
	rt.wg.Wait()
	rt.alarmRuns.Wait() // their events are over: only their Done is left
	// In-flight events are done and their sends queued: close the sockets
	// with 1001 once those are written.
	var errs []error
	errs = append(errs, rt.sockets.Shutdown(ctx))
	if rt.barrier != nil {
		errs = append(errs, rt.barrier.Close())
	}
	rt.loops.Close()
	errs = append(errs, rt.closeScratch(), rt.node.Close())
	rt.mu.Lock()
	rt.opened, rt.closed = false, true
	rt.mu.Unlock()
	return errors.Join(errs...)
}

func (rt *Runtime) activeObjects() []*object {
	rt.mu.RLock()
	defer rt.mu.RUnlock()
	objs := make([]*object, 0, len(rt.objects))
	for _, o := range rt.objects {
		objs = append(objs, o)
	}
	return objs
}

// lookup returns the live object for (ns, id), activating its record.
func (rt *Runtime) lookup(ns *Namespace, raw [32]byte) (*object, error) {
	k := objectKey{ns.name, raw}
	for {
		rt.mu.RLock()
		o, ok := rt.objects[k]
		closing, opened := rt.closing, rt.opened
		rt.mu.RUnlock()
		if !opened || closing {
			return nil, ErrClosed
		}
		if ok {
			if o.dead.Load() {
				<-o.gone // eviction in progress: wait for the file to close
				continue
			}
			return o, nil
		}
		rt.mu.Lock()
		if _, exists := rt.objects[k]; !exists {
			if rt.closing {
				rt.mu.Unlock()
				return nil, ErrClosed
			}
			o = newObject(rt, ns, raw)
			rt.objects[k] = o
			over := len(rt.objects) > rt.MaxActive
			rt.mu.Unlock()
			rt.stats.activeObjects.Add(1)
			if over {
				rt.kickEviction()
			}
			return o, nil
		}
		rt.mu.Unlock()
	}
}

// objectPath is where an object's database lives: a fan-out directory per
// first ID byte, so no directory holds more than 1/256 of a namespace.
func objectPath(dir, ns string, raw [32]byte) string {
	h := hex.EncodeToString(raw[:])
	return filepath.Join(dir, ns, h[:2], h+".sqlite")
}

// janitorTick runs on the runtime's clock: it wakes the eviction loop and
// arms the next tick.
func (rt *Runtime) janitorTick() {
	rt.kickEviction()
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if !rt.closing {
		rt.janitor = rt.Clock.AfterFunc(min(rt.IdleTimeout/4, time.Second), rt.janitorTick)
	}
}

func (rt *Runtime) kickEviction() {
	select {
	case rt.evictions <- struct{}{}:
	default:
	}
}

// evictLoop evicts idle objects, and the least recently used idle ones
// while more than MaxActive are in memory.
func (rt *Runtime) evictLoop() {
	defer rt.wg.Done()
	for {
		select {
		case <-rt.evictions:
			rt.evictIdle()
		case <-rt.stopEvict:
			return
		}
	}
}

func (rt *Runtime) evictIdle() {
	rt.janitorRun.Lock()
	defer rt.janitorRun.Unlock()
	idleBefore := rt.Clock.Now().UnixNano() - int64(rt.IdleTimeout)
	objs := rt.activeObjects()
	var wg sync.WaitGroup
	sem := make(chan struct{}, closeParallelism) // closing a database may checkpoint it: overlap a few
	evict := func(o *object) {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			rt.finishEviction(o, false)
			<-sem
		}()
	}
	// Over MaxActive: the least recently used go first; a busy one is
	// skipped and the next oldest taken instead (those already tried are
	// dead or still busy: kill refuses them again).
	if excess := len(objs) - rt.MaxActive; excess > 0 {
		for k := excess + 8; ; k *= 2 {
			for _, o := range leastRecentlyUsed(objs, k) {
				if excess > 0 && rt.kill(o) {
					evict(o)
					excess--
				}
			}
			if excess == 0 || k >= len(objs) {
				break
			}
		}
	}
	for _, o := range objs {
		if o.lastUsed.Load() <= idleBefore && rt.kill(o) {
			evict(o)
		}
	}
	wg.Wait()
}

// leastRecentlyUsed returns the n objects of objs used longest ago, oldest
// first. Over MaxActive, every activation asks for a few of ~MaxActive
// objects: a heap of n costs O(len(objs)·log n) where sorting them all cost
// O(len(objs)·log len(objs)) per activation (5 % of the CPU of 10,000 new
// rate-limit keys, docs/benchmarks.md).
func leastRecentlyUsed(objs []*object, n int) []*object {
	if n <= 0 {
		return nil
	}
	n = min(n, len(objs))
	h := make(lruHeap, 0, n) // a max-heap: the most recently used of the n kept on top
	for _, o := range objs {
		e := lruEntry{o.lastUsed.Load(), o}
		switch {
		case len(h) < n:
			heap.Push(&h, e)
		case e.used < h[0].used:
			h[0] = e
			heap.Fix(&h, 0)
		}
	}
	out := make([]*object, len(h))
	for i := len(h) - 1; i >= 0; i-- {
		out[i] = heap.Pop(&h).(lruEntry).o
	}
	return out
}

type lruEntry struct {
	used int64 // lastUsed when looked at
	o    *object
}

type lruHeap []lruEntry

func (h lruHeap) Len() int           { return len(h) }
func (h lruHeap) Less(i, j int) bool { return h[i].used > h[j].used }
func (h lruHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *lruHeap) Push(x any)        { *h = append(*h, x.(lruEntry)) }
func (h *lruHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// kill marks an object with no work dead, so calls look it up again.
func (rt *Runtime) kill(o *object) bool {
	return o.actor.Kill() && o.dead.CompareAndSwap(false, true)
}

// evict removes an idle object from memory (used by Close).
func (rt *Runtime) evict(o *object) {
	if rt.kill(o) {
		rt.finishEviction(o, true)
	}
}

// finishEviction closes a killed object's database and forgets it. While
// the runtime runs, a small WAL stays for the object's next activation;
// when it closes, every WAL is checkpointed into its database and removed.
func (rt *Runtime) finishEviction(o *object, closing bool) {
	closeDB := o.evict
	if closing {
		closeDB = o.close
	}
	if err := closeDB(); err != nil {
		rt.Logger.Error("closing object failed", "class", o.ns.name, "id", hex.EncodeToString(o.raw[:]), "err", err)
	}
	rt.mu.Lock()
	delete(rt.objects, objectKey{o.ns.name, o.raw})
	rt.mu.Unlock()
	rt.stats.activeObjects.Add(-1)
	rt.stats.evictions.Add(1)
	close(o.gone)
}

// closeScratch closes the scratch databases of every class.
func (rt *Runtime) closeScratch() error {
	errs := []error{rt.storeCfg.Scratch.Close()}
	for _, ns := range rt.classes {
		if ns.storeCfg != nil && ns.storeCfg != &rt.storeCfg {
			errs = append(errs, ns.storeCfg.Scratch.Close())
		}
	}
	return errors.Join(errs...)
}
