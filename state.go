package durable

import (
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/durableobjects/durable/internal/actor"
)

// State is what the runtime gives an object's constructor: the object's
// identity, storage, and control over its input gate. A State belongs to one
// instance; after a reset (a panic, an eviction) a new instance gets a new one.
type State struct {
	o       *object
	id      ID
	initErr error
	stale   atomic.Bool
	// blocking is the event running BlockConcurrencyWhile, if any:
	// OutsideGate in that event keeps the gate.
	blocking atomic.Pointer[actor.Event]
}

// ID returns the object's ID. Its Name is set when the object was reached
// through a name since it was last activated.
func (s *State) ID() ID {
	id := s.id
	if id.name == "" {
		if n := s.o.name.Load(); n != nil { // reached by name since activation
			id.name = *n
		}
	}
	return id
}

// Storage returns the object's storage.
func (s *State) Storage() *Storage { return &s.o.storage }

// Now returns the runtime clock's time.
func (s *State) Now() time.Time { return s.o.rt.Clock.Now() }

// Clock returns the runtime's clock, for timers (with AfterFunc) that must
// follow the same time as Now, such as a deadline a handler waits for
// outside the gate.
func (s *State) Clock() Clock { return s.o.rt.Clock }

// Closing returns a channel closed when the runtime begins to close. A
// handler that waits for something (outside the gate) should stop waiting
// and fail when it closes: Close waits for every running handler.
func (s *State) Closing() <-chan struct{} { return s.o.rt.closingCh }

// Logger returns the runtime's logger with the object's class and ID.
func (s *State) Logger() *slog.Logger {
	return s.o.rt.Logger.With("class", s.o.ns.name, "id", s.id.String())
}

// BlockConcurrencyWhile runs fn with no other event of the object running.
// In Go every constructor and handler already runs that way, so this marks
// intent: if fn fails, the object is reset and the event that activated it
// (or is running) fails with fn's error, with its writes discarded; the next
// event builds a fresh instance. Use it for initialization that must succeed
// before the object serves anything, such as schema migrations. Inside fn,
// OutsideGate keeps the gate: no other event runs while fn waits on
// external I/O, as the name says. Called outside the object's constructor
// and events it fails with ErrNotInEvent (where that can be detected: from
// another goroutine while an event runs it cannot).
func (s *State) BlockConcurrencyWhile(fn func() error) error {
	if s.stale.Load() {
		return ErrReset
	}
	ev := s.o.actor.Current()
	if ev == nil {
		return fmt.Errorf("durable: BlockConcurrencyWhile: %w", ErrNotInEvent)
	}
	if err := s.blockWhile(ev, fn); err != nil {
		err = fmt.Errorf("%w: BlockConcurrencyWhile failed: %w", ErrReset, err)
		if s.o.state == s && s.o.inst == nil {
			s.initErr = err // in the constructor: Activate reports it
			return err
		}
		panic(actor.Abort{Err: err})
	}
	return nil
}

// blockWhile runs fn as event ev's BlockConcurrencyWhile callback.
func (s *State) blockWhile(ev *actor.Event, fn func() error) error {
	outer := s.blocking.Swap(ev) // nil, or ev itself when nested
	defer s.blocking.Store(outer)
	return fn()
}

// OutsideGate runs fn outside the object's input gate, so other events of
// the object run while fn waits on slow external I/O (an upstream HTTP
// call, say). The current turn ends before fn runs: its writes are kept and
// will commit with the batch; afterwards the handler continues in a new
// turn. State read before the call may have changed when it returns. Do not
// touch the object's storage or fields from fn. A constructor may not call
// it (ErrInConstructor), except inside BlockConcurrencyWhile, where fn runs
// keeping the gate (and the turn): no other event runs meanwhile.
func (s *State) OutsideGate(fn func() error) error {
	if s.stale.Load() {
		return ErrReset
	}
	if s.o.store.InTransaction() {
		return errors.New("durable: OutsideGate inside Storage.Transaction")
	}
	if ev := s.blocking.Load(); ev != nil && ev == s.o.actor.Current() {
		return fn() // inside BlockConcurrencyWhile: the gate stays held
	}
	return s.o.actor.OutsideGate(fn)
}
