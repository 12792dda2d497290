package durable

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/durableobjects/durable/internal/actor"
	"github.com/durableobjects/durable/internal/alarm"
	"github.com/durableobjects/durable/internal/barrier"
	"github.com/durableobjects/durable/internal/hibernate"
	"github.com/durableobjects/durable/internal/sqlstore"
)

// object is one object in memory: its executor, its storage, and (while
// activated) its instance. It implements actor.Host; those methods run only
// on the goroutine holding the object's input gate.
type object struct {
	rt    *Runtime
	ns    *Namespace
	raw   [32]byte
	name  atomic.Pointer[string] // the name the ID was made from, when known
	actor *actor.Actor
	store *sqlstore.Store

	// Gate-owned.
	inst       any
	state      *State
	walFresh   bool // the WAL file may be new: sync its directory entry too
	indexWrote bool // the batch wrote the alarm index: sync the node database too
	alarmKey   alarm.Key
	alarm      *runningAlarm // the alarm whose handler is running
	indexedAt  atomic.Int64  // the alarm index entry we know of; 0 unknown
	// alarmsInFlight counts deliveries of the object's alarm between their
	// firing and the scheduler's Done: meanwhile indexedAt cannot be trusted.
	alarmsInFlight atomic.Int32

	// Sends made while no event could take them wait in outPending for
	// the internal event that will; later sends join them until it runs.
	outMu      sync.Mutex
	outPending *heldSends

	lastUsed atomic.Int64 // Clock nanoseconds of the last event
	dead     atomic.Bool  // evicted; look the object up again
	gone     chan struct{}
	storage  Storage
}

func newObject(rt *Runtime, ns *Namespace, raw [32]byte) *object {
	o := &object{rt: rt, ns: ns, raw: raw, gone: make(chan struct{})}
	o.store = sqlstore.New(ns.storeCfg, objectPath(rt.Dir, ns.name, raw))
	o.actor = actor.New(o, &rt.actorCfg)
	o.alarmKey = alarm.Key{NS: ns.name, ID: raw}
	o.storage.o = o
	o.walFresh = true
	o.touch()
	return o
}

func (o *object) touch() { o.lastUsed.Store(o.rt.Clock.Now().UnixNano()) }

func (o *object) id() ID {
	id := ID{raw: o.raw, ns: o.ns}
	if n := o.name.Load(); n != nil {
		id.name = *n
	}
	return id
}

// Activate implements actor.Host: it runs the constructor.
func (o *object) Activate(ctx context.Context) error {
	st := &State{o: o, id: o.id()}
	o.state = st
	inst := o.ns.ctor(st)
	if st.initErr != nil {
		return st.initErr
	}
	o.inst = inst
	o.rt.stats.activations.Add(1)
	return o.reconcileAlarm()
}

// reconcileAlarm makes sure the alarm index knows the object's alarm. The
// index is written before the object commits, so it is only ever missing
// an alarm if a crash tore the two apart; checking at activation bounds that.
func (o *object) reconcileAlarm() error {
	if o.indexedAt.Load() != 0 {
		return nil
	}
	if ok, err := o.store.Exists(); err != nil || !ok {
		return err
	}
	at, ok, err := o.store.MetaInt(metaAlarm)
	if err != nil || !ok {
		return err
	}
	if o.alarmsInFlight.Load() == 0 {
		// Usually the entry is there: reading it costs no write to the
		// node database on every activation.
		cur, err := o.rt.sched.Lookup(o.alarmKey)
		if err != nil {
			return err
		}
		if cur != 0 && cur <= at {
			o.indexedAt.Store(cur)
			return nil
		}
	}
	return o.indexAlarm(at)
}

// indexAlarm moves the object's index entry to at or earlier.
func (o *object) indexAlarm(at int64) error {
	// An entry at or before at is enough, unless a delivery is in flight:
	// its Done may move or delete that entry, and only the scheduler can
	// keep this alarm through it.
	if cur := o.indexedAt.Load(); cur != 0 && cur <= at && o.alarmsInFlight.Load() == 0 {
		return nil
	}
	if err := o.rt.sched.Set(o.alarmKey, at); err != nil {
		return err
	}
	o.indexedAt.Store(at)
	o.indexWrote = true
	return nil
}

// Reset implements actor.Host.
func (o *object) Reset() {
	o.alarm = nil
	if o.state != nil {
		o.state.stale.Store(true)
	}
	o.inst, o.state = nil, nil
}

// BeginTurn implements actor.Host.
func (o *object) BeginTurn() { o.store.BeginTurn() }

// EndTurn implements actor.Host.
func (o *object) EndTurn(keep bool) error { return o.store.EndTurn(keep) }

// Commit implements actor.Host.
func (o *object) Commit() (bool, []string, error) {
	wrote, err := o.store.CommitBatch()
	if err != nil || !wrote || o.rt.barrier == nil || o.rt.barrier.Method() != barrier.Fdatasync {
		return wrote, nil, err
	}
	// fdatasync needs the files by name: the WAL; after a create, the
	// database file and every directory entry up to the data directory;
	// after a reopen (the WAL is new), the object's directory; and the node
	// database's WAL when this batch wrote an alarm index entry.
	path := o.store.Path()
	files := []string{path + "-wal"}
	if o.store.TakeCreated() {
		files = append(files, path)
		for d := filepath.Dir(path); len(d) >= len(o.rt.Dir); d = filepath.Dir(d) {
			files = append(files, d)
			if d == filepath.Dir(d) {
				break
			}
		}
	} else if o.walFresh {
		files = append(files, filepath.Dir(path))
	}
	o.walFresh = false
	if o.indexWrote {
		files = append(files, o.rt.node.Path()+"-wal")
		o.indexWrote = false
	}
	return wrote, files, nil
}

// AfterCommit implements actor.Host: it checkpoints the object's WAL when
// it is due, once the batch's results are on their way.
func (o *object) AfterCommit() { o.store.Checkpoint() }

// Rollback implements actor.Host. A store broken by an I/O error is closed;
// the next event reopens it from what was committed.
func (o *object) Rollback() {
	o.store.RollbackBatch()
	if err := o.store.Err(); err != nil {
		o.rt.Logger.Error("object storage failed; reopening", "class", o.ns.name, "id", o.id().String(), "err", err)
		o.store.Close()
		o.store = sqlstore.New(o.ns.storeCfg, o.store.Path())
		o.walFresh = true
	}
}

// close releases the object's database; the actor is dead by then.
func (o *object) close() error {
	return o.store.Close()
}

// evict closes the object's database as it leaves memory while the runtime
// keeps running: a small WAL is left for the next activation (see
// sqlstore.Store.Evict).
func (o *object) evict() error {
	return o.store.Evict()
}

// submit queues run as an event and returns the channel its outcome
// arrives on once the output gate lets it go.
func (o *object) submit(ctx context.Context, internal bool, run func(ctx context.Context, o *object)) (<-chan error, error) {
	return o.submitEvent(ctx, &actor.Event{Internal: internal}, false, run)
}

// submitBare submits an internal event that works on the object's storage
// only: it does not build the instance (run must not use o.inst or
// o.state), so it runs even for an object whose constructor fails.
func (o *object) submitBare(run func(ctx context.Context, o *object)) (<-chan error, error) {
	return o.submitEvent(context.Background(), &actor.Event{Internal: true, Bare: true}, false, run)
}

// submitEvent is submit for ev (Internal and Bare set as wanted); inline
// is for a caller about to wait for the result: it may run the event
// itself (actor.Actor.EnqueueInline), after the event is counted.
func (o *object) submitEvent(ctx context.Context, ev *actor.Event, inline bool, run func(ctx context.Context, o *object)) (<-chan error, error) {
	done := make(chan error, 1)
	info := &eventInfo{o: o}
	ev.Ctx, ev.Value, ev.Done = ctx, info, func(err error) {
		info.release(err)
		done <- err
	}
	info.ev = ev
	ev.Run = func(ctx context.Context) {
		run(context.WithValue(ctx, eventKey{}, info), o)
	}
	var runHere func()
	var err error
	if inline {
		runHere, err = o.actor.EnqueueInline(ev)
	} else {
		err = o.actor.Enqueue(ev)
	}
	if err != nil {
		if errors.Is(err, ErrOverloaded) {
			o.rt.stats.overloaded.Add(1)
		}
		return nil, err
	}
	o.touch()
	o.rt.stats.events.Add(1)
	if runHere != nil {
		runHere()
	}
	return done, nil
}

// eventKey marks a handler's context with the event it serves, so a call
// back into the same object while holding the gate is caught.
type eventKey struct{}

// eventInfo is what the runtime keeps about an event beyond the executor:
// the WebSocket messages it sent, which leave only with its result.
type eventInfo struct {
	o  *object
	ev *actor.Event

	mu       sync.Mutex // Send may be called from any goroutine
	sends    []func()   // run once the event's writes are durable
	released bool
	closing  []*hibernate.Socket // closed by the event, the close held with its sends
}

// close notes that the event closes sock (with its sends); closed reports
// whether it did.
func (info *eventInfo) close(sock *hibernate.Socket) {
	info.mu.Lock()
	info.closing = append(info.closing, sock)
	info.mu.Unlock()
}

func (info *eventInfo) closed(sock *hibernate.Socket) bool {
	info.mu.Lock()
	defer info.mu.Unlock()
	return slices.Contains(info.closing, sock)
}

// hold adds f to the sends of the event; it reports false once the event
// was released (a goroutine of a handler that already returned).
func (info *eventInfo) hold(f func()) bool {
	info.mu.Lock()
	defer info.mu.Unlock()
	if info.released {
		return false
	}
	info.sends = append(info.sends, f)
	return true
}

// release runs the event's held sends, or drops them if the event failed
// (its writes were discarded, so what it said must not leave either).
func (info *eventInfo) release(err error) {
	info.mu.Lock()
	sends := info.sends
	info.sends, info.released = nil, true
	info.mu.Unlock()
	if err == nil {
		for _, send := range sends {
			send()
		}
	}
}

// heldSends are sends waiting for the internal event that will hold them.
type heldSends struct{ fs []func() }

// holdOutput runs f when the output gate releases the event holding the
// object's gate. With no event holding it (a goroutine of a handler that
// returned), f joins a new internal event, so it still waits for the
// object's earlier writes. Sends of one goroutine leave in the order it made
// them: events are released in order, and while that internal event waits
// in the mailbox, later sends join it rather than an event ahead of it.
func (o *object) holdOutput(f func()) {
	o.outMu.Lock()
	if p := o.outPending; p != nil {
		p.fs = append(p.fs, f)
		o.outMu.Unlock()
		return
	}
	o.outMu.Unlock()
	if ev := o.actor.Current(); ev != nil && ev.Value.(*eventInfo).hold(f) {
		return
	}
	if o.dead.Load() {
		f() // evicted: nothing of its is waiting for a sync
		return
	}
	o.outMu.Lock()
	if p := o.outPending; p != nil { // another goroutine made one meanwhile
		p.fs = append(p.fs, f)
		o.outMu.Unlock()
		return
	}
	p := &heldSends{fs: []func(){f}}
	o.outPending = p
	o.outMu.Unlock()
	_, err := o.submit(context.Background(), true, func(ctx context.Context, _ *object) {
		info := ctx.Value(eventKey{}).(*eventInfo)
		// Under outMu, so a send that finds outPending gone (and joins this
		// event as the current one) comes after these.
		o.outMu.Lock()
		defer o.outMu.Unlock()
		for _, f := range o.takeHeld(p) {
			info.hold(f)
		}
	})
	if err != nil {
		o.outMu.Lock()
		fs := o.takeHeld(p)
		o.outMu.Unlock()
		for _, f := range fs {
			f() // the object cannot take an event: send without waiting
		}
	}
}

// takeHeld empties p and stops later sends from joining it. outMu must be
// held.
func (o *object) takeHeld(p *heldSends) []func() {
	if o.outPending == p {
		o.outPending = nil
	}
	fs := p.fs
	p.fs = nil
	return fs
}
