// Package actor is the executor of one object: its mailbox, its input gate
// (one event at a time, in arrival order), batching of events into one
// transaction, the output gate (results leave only once the writes before
// them are durable), and stepping outside the gate for slow I/O.
//
// Goroutines: an actor has no goroutine while its mailbox is empty. Enqueue
// starts one (the loop, on a Pool's goroutine when Config.Go says so); the
// loop runs batches until the mailbox is empty, then returns.
// EnqueueInline lets the caller run its own event on its own goroutine,
// starting a loop goroutine afterwards only if more work is queued by then. Whichever
// goroutine runs the loop holds the gate, and only the holder touches the
// Host and the batch fields. A handler that steps outside
// the gate hands the loop to a new goroutine and later asks for the gate
// back; the loop grants it and waits until the handler yields.
//
// Lock order: Actor.mu, then Actor.relMu; neither is held while calling the
// Host or user code.
package actor

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
)

// Errors of the executor.
var (
	// ErrOverloaded: the mailbox is full; the event was not queued.
	ErrOverloaded = errors.New("object overloaded: too many events queued")
	// ErrEvicted: the actor was evicted; look the object up again.
	ErrEvicted = errors.New("actor evicted")
	// ErrReset: the object was reset (a panic, a failed commit) by the
	// event itself, or while it was queued or outside the gate; the event
	// did not complete. A PanicError is an ErrReset too.
	ErrReset = errors.New("object reset")
	// ErrNotInEvent: OutsideGate called with no event holding the gate.
	ErrNotInEvent = errors.New("not called from an event handler holding the gate")
	// ErrInConstructor: OutsideGate called while the object is being built;
	// initialization runs with the gate held, to completion.
	ErrInConstructor = errors.New("OutsideGate cannot be used in a constructor")
)

// Host is the object an actor runs: its storage transactions and instance.
// The actor calls it only from the goroutine holding the gate.
type Host interface {
	// Activate builds the object's instance if there is none. It runs
	// inside a turn; an error or panic fails the event it ran for.
	Activate(ctx context.Context) error
	// Reset drops the instance after a panic or a failed commit; the next
	// event activates a new one.
	Reset()
	// BeginTurn and EndTurn bracket each turn; keep=false undoes its writes.
	BeginTurn()
	EndTurn(keep bool) error
	// Commit commits the batch and reports whether it wrote anything that
	// needs a sync; files names what the sync must cover.
	Commit() (wrote bool, files []string, err error)
	// Rollback discards the batch.
	Rollback()
	// AfterCommit runs after a committed batch's results have been handed
	// to the sync round, for upkeep that should not delay them (a
	// checkpoint). It runs inside the gate, before the next batch.
	AfterCommit()
}

// Config is shared by the actors of a runtime.
type Config struct {
	// MaxQueue bounds each mailbox; past it Enqueue fails with ErrOverloaded.
	MaxQueue int
	// MaxBatch bounds how many events commit together.
	MaxBatch int
	// Sync makes a commit durable and calls done (see barrier.Barrier.Sync).
	// Nil means commits are durable when Commit returns.
	Sync func(files []string, done func(error))
	// SyncFailed, if set, returns the error of a failed sync that broke
	// durability for good (barrier.Barrier.Err), or nil. Once it is set,
	// the results of batches that wrote nothing fail with it too: what
	// they read may be writes the failed sync lost.
	SyncFailed func() error
	// OnPanic is told about every recovered panic.
	OnPanic func(v any, stack []byte)
	// OnCommit is told about every batch commit and whether it wrote.
	OnCommit func(events int, wrote bool, err error)
	// Go starts the loop on a goroutine (a Pool's Go); nil means a new
	// goroutine each time.
	Go func(fn func())
}

// Event is one delivery to an object.
type Event struct {
	// Ctx is the caller's context; an event whose context is done before
	// it starts is dropped with the context's error.
	Ctx context.Context
	// Run runs inside the gate.
	Run func(ctx context.Context)
	// Done is called once, when the event's result may leave: with nil, or
	// with the error that kept the event from completing (a panic, a failed
	// commit or sync, a reset). It must not block.
	Done func(err error)
	// Internal events (alarms) are not refused by a full mailbox.
	Internal bool
	// Bare events run on the host's storage without its instance: they
	// do not activate it (so an instance that cannot be built does not
	// fail them).
	Bare bool
	// Value is the host's, for finding the event's own data from Current.
	Value any

	err      error
	resume   bool          // queued to continue after OutsideGate
	detached bool          // has stepped outside the gate at least once
	grant    chan struct{} // the loop hands the gate back
	yield    chan yieldMsg // the handler hands it back to the loop
	gen      uint64        // instance generation the event runs against
	outside  *outsidePanic // the panic OutsideGate raised again, for its stack
}

type yieldMsg struct {
	finished bool  // the handler returned (else it stepped outside again)
	err      error // why it failed
}

// Actor executes the events of one object.
type Actor struct {
	host  Host
	cfg   *Config
	runFn func() // a.run, allocated once

	mu        sync.Mutex
	queue     []*Event
	resumes   []*Event
	running   bool // a goroutine runs the loop
	dead      bool
	suspended int // events outside the gate

	// Owned by the gate holder.
	batch     []*Event
	pos       int
	completed []*Event
	current   atomic.Pointer[Event]
	gen       uint64
	active    bool // the host has an instance

	relMu      sync.Mutex
	pending    []*release // batches waiting for their sync, in commit order
	outbox     []*release // batches free to leave, in commit order
	delivering bool       // a goroutine is delivering the outbox
	idle       chan struct{}
}

type release struct {
	events []*Event
	ready  bool
	err    error
	wrote  bool // the batch wrote: its err is its own sync's
}

// New returns an actor for host.
func New(host Host, cfg *Config) *Actor {
	a := &Actor{host: host, cfg: cfg}
	a.runFn = a.run
	return a
}

// Enqueue adds ev to the mailbox. It fails with ErrOverloaded when the
// mailbox is full and ErrEvicted when the actor is gone.
func (a *Actor) Enqueue(ev *Event) error {
	start, err := a.enqueue(ev)
	if start {
		a.goRun()
	}
	return err
}

// EnqueueInline is Enqueue for a caller that will wait for ev's result
// anyway. When no goroutine runs the loop, it returns runHere instead of
// starting one: the caller must call it, at once, and runs ev, alone in
// its batch, on its own goroutine; whatever was queued meanwhile goes to a
// loop goroutine afterwards. That saves the two goroutine hand-offs of an
// event on an idle object (to the loop and back). Only ev runs there: the
// caller never waits for another caller's event, nor runs the work another
// handler does outside the gate. The caller cannot stop waiting while its
// own event runs.
func (a *Actor) EnqueueInline(ev *Event) (runHere func(), err error) {
	start, err := a.enqueue(ev)
	if !start {
		return nil, err
	}
	return func() { a.runInline(ev) }, nil
}

// runInline runs ev, the first event of a mailbox that was empty, as a
// batch of its own, then hands the loop on (handOff). A panic outside the
// handler (in the host's commit, say) would kill a loop goroutine, and the
// process with it; on the caller's goroutine it could be recovered by the
// caller (net/http does) and leave the actor running forever. So it goes
// on, with its stack, on a goroutine of its own.
func (a *Actor) runInline(ev *Event) {
	defer func() {
		if v := recover(); v != nil {
			stack := debug.Stack()
			go panic(fmt.Sprintf("%v\n\n[recovered on the caller's goroutine, re-raised]\n%s", v, stack))
		}
	}()
	a.mu.Lock()
	a.queue = compact(a.queue, 1) // ev: the mailbox was empty when it came
	a.mu.Unlock()
	a.batch = append(a.batch[:0], ev)
	a.pos = 0
	a.completed = a.completed[:0]
	a.loop(true)
}

// enqueue adds ev to the mailbox and reports whether the caller must start
// the loop.
func (a *Actor) enqueue(ev *Event) (start bool, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.dead {
		return false, ErrEvicted
	}
	if !ev.Internal && len(a.queue) >= a.cfg.MaxQueue {
		return false, fmt.Errorf("%w (%d)", ErrOverloaded, a.cfg.MaxQueue)
	}
	a.queue = append(a.queue, ev)
	start = !a.running
	a.running = true
	return start, nil
}

// goRun starts the loop on another goroutine.
func (a *Actor) goRun() {
	if a.cfg.Go != nil {
		a.cfg.Go(a.runFn)
		return
	}
	go a.run()
}

// QueueLen returns how many events wait in the mailbox.
func (a *Actor) QueueLen() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.queue)
}

// Busy reports whether the actor has work: queued, running, outside the
// gate, or results waiting for a sync.
func (a *Actor) Busy() bool {
	a.mu.Lock()
	busy := a.running || len(a.queue) > 0 || a.suspended > 0
	a.mu.Unlock()
	if busy {
		return true
	}
	a.relMu.Lock()
	defer a.relMu.Unlock()
	return a.releasing()
}

// releasing reports whether results wait for a sync or are being
// delivered. relMu must be held.
func (a *Actor) releasing() bool {
	return len(a.pending) > 0 || len(a.outbox) > 0 || a.delivering
}

// Kill marks the actor dead if it has no work, so later Enqueue calls fail
// with ErrEvicted. The caller then releases the host's resources.
func (a *Actor) Kill() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.dead {
		return true
	}
	if a.running || len(a.queue) > 0 || a.suspended > 0 {
		return false
	}
	a.relMu.Lock()
	defer a.relMu.Unlock()
	// Results being delivered do not keep the host: they need nothing of
	// it. A sync still pending does (its files must stay open).
	if len(a.pending) > 0 {
		return false
	}
	a.dead = true
	return true
}

// WaitIdle blocks until the actor has no work or ctx is done.
func (a *Actor) WaitIdle(ctx context.Context) error {
	for {
		// Take the channel before looking: if the actor goes idle after
		// the look, it closes this very channel.
		a.relMu.Lock()
		if a.idle == nil {
			a.idle = make(chan struct{})
		}
		ch := a.idle
		a.relMu.Unlock()
		if !a.Busy() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (a *Actor) signalIdle() {
	a.relMu.Lock()
	if a.idle != nil {
		close(a.idle)
		a.idle = nil
	}
	a.relMu.Unlock()
}

// take moves the next batch out of the mailbox, or stops the loop.
func (a *Actor) take() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := len(a.resumes) + len(a.queue)
	if n == 0 {
		a.running = false
		return false
	}
	n = min(n, a.cfg.MaxBatch)
	a.batch = a.batch[:0]
	k := min(n, len(a.resumes))
	a.batch = append(a.batch, a.resumes[:k]...)
	a.resumes = compact(a.resumes, k)
	a.batch = append(a.batch, a.queue[:n-k]...)
	a.queue = compact(a.queue, n-k)
	a.pos = 0
	a.completed = a.completed[:0]
	return true
}

// compact drops the first k events, clearing their slots.
func compact(q []*Event, k int) []*Event {
	if k == len(q) {
		clear(q)
		return q[:0]
	}
	n := copy(q, q[k:])
	clear(q[n:])
	return q[:n]
}

// run is the loop. It returns when the mailbox is empty or when this
// goroutine stops holding the gate (its handler stepped outside).
func (a *Actor) run() { a.loop(false) }

// loop is run; once makes it return after one batch, handing the loop on
// (handOff) if there is more to do.
func (a *Actor) loop(once bool) {
	defer a.signalIdle()
	for {
		if len(a.batch) > 0 && a.pos >= len(a.batch) {
			// The previous holder left the gate (OutsideGate) on the
			// batch's last item: the batch is over but not committed yet.
			a.finishBatch()
			a.batch = a.batch[:0]
			a.pos = 0
		}
		if a.pos >= len(a.batch) {
			if !a.take() {
				return
			}
		}
		for a.pos < len(a.batch) {
			ev := a.batch[a.pos]
			a.batch[a.pos] = nil
			a.pos++
			if !a.runItem(ev) {
				return
			}
		}
		a.finishBatch()
		a.batch = a.batch[:0]
		a.pos = 0
		if once {
			a.handOff()
			return
		}
	}
}

// handOff ends a loop run by runInline after its batch: the loop stops if
// the mailbox is empty, or goes on on a goroutine of its own.
func (a *Actor) handOff() {
	a.mu.Lock()
	more := len(a.resumes)+len(a.queue) > 0
	if !more {
		a.running = false
	}
	a.mu.Unlock()
	if more {
		a.goRun()
	}
}

// runItem runs one event or resumed turn. It reports whether the calling
// goroutine still holds the gate.
func (a *Actor) runItem(ev *Event) bool {
	if ev.resume {
		ev.resume = false
		ev.grant <- struct{}{}
		msg := <-ev.yield
		if msg.finished {
			ev.err = msg.err
			a.completed = append(a.completed, ev)
		}
		return true
	}
	if err := ev.Ctx.Err(); err != nil {
		ev.err = err
		a.completed = append(a.completed, ev)
		return true
	}
	if !a.active && !ev.Bare {
		a.host.BeginTurn()
		a.current.Store(ev)
		err := a.call(func() error { return a.host.Activate(ev.Ctx) })
		a.current.Store(nil)
		if err != nil {
			a.endTurn(false)
			a.reset()
			ev.err = err
			a.completed = append(a.completed, ev)
			return true
		}
		if err := a.endTurn(true); err != nil {
			ev.err = err
			a.completed = append(a.completed, ev)
			return true
		}
		a.active = true
	}
	ev.gen = a.gen
	a.host.BeginTurn()
	a.current.Store(ev)
	err := a.call(func() error { ev.Run(ev.Ctx); return nil })
	a.current.Store(nil)
	keep := err == nil
	if endErr := a.endTurn(keep); endErr != nil && err == nil {
		err = endErr
	}
	if !keep && !errors.Is(err, errStale) {
		a.reset()
	}
	if errors.Is(err, errStale) {
		err = ErrReset
	}
	if ev.detached {
		// This goroutine stepped outside the gate earlier and was granted
		// it back by the loop, which waits for this message.
		ev.yield <- yieldMsg{finished: true, err: err}
		return false
	}
	ev.err = err
	a.completed = append(a.completed, ev)
	return true
}

func (a *Actor) endTurn(keep bool) error {
	if err := a.host.EndTurn(keep); err != nil {
		return fmt.Errorf("end of event: %w", err)
	}
	return nil
}

// errStale aborts a resumed handler whose instance was reset meanwhile.
var errStale = errors.New("stale instance")

type stalePanic struct{}

// Abort, panicked with by a handler, ends its event with Err: the turn's
// writes are discarded and the object is reset, as for a panic, but nothing
// is logged as a crash.
type Abort struct{ Err error }

// call runs fn, turning a panic into an error.
func (a *Actor) call(fn func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			if _, ok := v.(stalePanic); ok {
				err = errStale
				return
			}
			if ab, ok := v.(Abort); ok {
				err = ab.Err
				return
			}
			err = &PanicError{Value: v, Stack: a.stackOf(v)}
			if a.cfg.OnPanic != nil {
				a.cfg.OnPanic(v, err.(*PanicError).Stack)
			}
		}
	}()
	return fn()
}

// HoldsGate reports whether ev is the event holding the gate right now.
func (a *Actor) HoldsGate(ev *Event) bool { return ev != nil && a.current.Load() == ev }

// Current returns the event holding the gate, or nil.
func (a *Actor) Current() *Event { return a.current.Load() }

// ResetInstance drops the object's instance once the current turn ends,
// keeping the turn's writes. Only the gate holder may call it.
func (a *Actor) ResetInstance() { a.reset() }

func (a *Actor) reset() {
	a.host.Reset()
	a.active = false
	a.gen++
}

// finishBatch commits the batch and hands its results to the output gate.
func (a *Actor) finishBatch() {
	done := append([]*Event(nil), a.completed...)
	a.completed = a.completed[:0]
	wrote, files, err := a.host.Commit()
	if a.cfg.OnCommit != nil {
		a.cfg.OnCommit(len(done), wrote, err)
	}
	if err != nil {
		a.host.Rollback()
		a.reset()
		err = fmt.Errorf("%w: commit failed: %w", ErrReset, err)
		for _, ev := range done {
			if ev.err == nil {
				ev.err = err
			}
		}
		wrote = false
	}
	a.release(done, wrote, files)
	if err == nil {
		a.host.AfterCommit()
	}
}

// release delivers results once every commit before them is durable, in
// commit order: a batch that wrote nothing still waits for the batches
// before it (what it read may be theirs, and what it sends must not pass
// theirs).
func (a *Actor) release(events []*Event, wrote bool, files []string) {
	r := &release{events: events, ready: !wrote, wrote: wrote}
	a.relMu.Lock()
	if r.ready && len(a.pending) == 0 {
		a.failIfSyncFailed(r)
		a.outbox = append(a.outbox, r)
		a.relMu.Unlock()
		a.deliverOutbox()
		return
	}
	a.pending = append(a.pending, r)
	a.relMu.Unlock()
	if !wrote {
		return
	}
	if a.cfg.Sync == nil {
		a.synced(r, nil)
		return
	}
	a.cfg.Sync(files, func(err error) { a.synced(r, err) })
}

func (a *Actor) synced(r *release, err error) {
	a.relMu.Lock()
	r.ready, r.err = true, err
	for len(a.pending) > 0 && a.pending[0].ready {
		a.failIfSyncFailed(a.pending[0])
		a.outbox = append(a.outbox, a.pending[0])
		a.pending[0] = nil
		a.pending = a.pending[1:]
	}
	if len(a.pending) == 0 {
		a.pending = nil
	}
	a.relMu.Unlock()
	a.deliverOutbox()
}

// failIfSyncFailed fails a batch that wrote nothing, as it leaves, if a
// sync has failed for good by then (Config.SyncFailed): what it read may
// be a write that sync lost, its own object's included when that write's
// batch was still waiting for the sync ahead of it.
func (a *Actor) failIfSyncFailed(r *release) {
	if !r.wrote && r.err == nil && a.cfg.SyncFailed != nil {
		r.err = a.cfg.SyncFailed()
	}
}

// deliverOutbox delivers the outbox in order. One goroutine delivers at a
// time (the actor's loop, or a sync's callback): whoever finds another at
// it leaves its batches to that one, so no batch's results overtake an
// earlier one's.
func (a *Actor) deliverOutbox() {
	a.relMu.Lock()
	if a.delivering {
		a.relMu.Unlock()
		return
	}
	a.delivering = true
	for len(a.outbox) > 0 {
		out := a.outbox
		a.outbox = nil
		a.relMu.Unlock()
		for _, r := range out {
			deliver(r)
		}
		a.relMu.Lock()
	}
	a.delivering = false
	idle := len(a.pending) == 0 && a.idle != nil
	a.relMu.Unlock()
	if idle {
		a.signalIdle()
	}
}

func deliver(r *release) {
	for _, ev := range r.events {
		err := ev.err
		if err == nil && r.err != nil {
			err = fmt.Errorf("writes not made durable: %w", r.err)
		}
		ev.Done(err)
	}
}

// OutsideGate runs fn outside the input gate: other events of the object
// run meanwhile. The current turn ends before fn (its writes join the
// batch) and a new one begins when fn returns and the gate is granted back.
// It must be called by the handler of the event holding the gate.
func (a *Actor) OutsideGate(fn func() error) error {
	ev := a.current.Load()
	if ev == nil {
		return ErrNotInEvent
	}
	if !a.active {
		return ErrInConstructor
	}
	if err := a.endTurn(true); err != nil {
		return err
	}
	a.current.Store(nil)
	a.mu.Lock()
	a.suspended++
	a.mu.Unlock()
	if !ev.detached {
		// This goroutine ran the loop; a new one takes it over.
		ev.detached = true
		ev.grant = make(chan struct{})
		ev.yield = make(chan yieldMsg)
		a.goRun()
	} else {
		ev.yield <- yieldMsg{}
	}

	panicked, err := callOutside(fn)

	a.mu.Lock()
	a.suspended--
	ev.resume = true
	a.resumes = append(a.resumes, ev)
	start := !a.running
	a.running = true
	a.mu.Unlock()
	if start {
		a.goRun()
	}
	<-ev.grant
	a.current.Store(ev)
	a.host.BeginTurn()
	if ev.gen != a.gen || !a.active {
		// The object was reset while this handler was outside: the rest of
		// it would run against state that no longer exists.
		if panicked != nil && a.cfg.OnPanic != nil {
			a.cfg.OnPanic(panicked.value, panicked.stack) // logged, not lost
		}
		panic(stalePanic{})
	}
	if panicked != nil {
		// Raised again holding the gate, where a handler's panic is
		// handled (the turn's writes discarded, the object reset), with its
		// own value: the handler may recover it. call reports the stack it
		// was first raised on.
		ev.outside = panicked
		panic(panicked.value)
	}
	return err
}

// outsidePanic is a panic of work done outside the gate, with the stack
// it was raised on.
type outsidePanic struct {
	value any
	stack []byte
}

// stackOf returns the stack v was first raised on: an OutsideGate
// callback's, if v is the panic it raised again, else the current one.
func (a *Actor) stackOf(v any) []byte {
	if ev := a.current.Load(); ev != nil && ev.outside != nil {
		op := ev.outside
		ev.outside = nil
		if same(op.value, v) {
			return op.stack
		}
	}
	return stack()
}

// same reports whether two panic values are the same value (false for
// values that cannot be compared).
func same(a, b any) (eq bool) {
	defer func() {
		if recover() != nil {
			eq = false
		}
	}()
	return a == b
}

// callOutside runs fn, returning its panic, if any, instead of raising
// it: a panic outside the gate must wait for the gate to be handled.
func callOutside(fn func() error) (panicked *outsidePanic, err error) {
	done := false
	defer func() {
		if !done {
			panicked = &outsidePanic{value: recover(), stack: stack()}
		}
	}()
	err = fn()
	done = true
	return nil, err
}
