package durable

import (
	"errors"

	"github.com/durableobjects/durable/internal/actor"
	"github.com/durableobjects/durable/internal/sqlstore"
)

// Errors of the runtime. Test for them with errors.Is.
var (
	// ErrOverloaded: the object's queue is full; the call had no effect and
	// may be retried after a backoff.
	ErrOverloaded = actor.ErrOverloaded
	// ErrReset: the object was reset (a handler panicked, a commit or
	// BlockConcurrencyWhile failed) before the call completed; after a
	// panic the error is also a *PanicError, with the panic's value and
	// stack. The writes of the turn it was in were discarded; the writes of
	// turns it had already ended (by calling State.OutsideGate) stand, as
	// each turn commits on its own, so a call that used OutsideGate may
	// have partly applied.
	ErrReset = actor.ErrReset
	// ErrClosed: the runtime is closed or closing.
	ErrClosed = errors.New("durable: runtime closed")
	// ErrInvalidID: a malformed ID, or one made by another namespace or
	// data directory.
	ErrInvalidID = errors.New("durable: invalid object ID")
	// ErrNoMethod: the object has no RPC method of that name.
	ErrNoMethod = errors.New("durable: no such method")
	// ErrBadArgument: an RPC argument or result could not be encoded or decoded.
	ErrBadArgument = errors.New("durable: bad RPC argument")
	// ErrNoHandler: the object does not implement the kind of event sent to
	// it (http.Handler for Fetch, Alarmer for alarms).
	ErrNoHandler = errors.New("durable: object has no handler for this event")
	// ErrReentrant: a handler called its own object through a stub while
	// holding the input gate, which could never complete. Call the method
	// directly, or call from inside State.OutsideGate.
	ErrReentrant = errors.New("durable: object called itself while holding its input gate")
	// ErrBadRequestBody: Fetch could not read the request's body (the client
	// went away or was too slow); the object was not called.
	ErrBadRequestBody = errors.New("durable: request body could not be read")
	// ErrTooLarge: a request or response body over the runtime's limit, or
	// a WebSocket attachment or automatic response over its own.
	ErrTooLarge = errors.New("durable: body too large")
	// ErrNotInEvent: a State method that needs the input gate was called
	// outside of the object's event handlers.
	ErrNotInEvent = actor.ErrNotInEvent
	// ErrInConstructor: State.OutsideGate called by a constructor.
	ErrInConstructor = actor.ErrInConstructor
)

// Storage errors.
var (
	ErrKeyTooLarge   = sqlstore.ErrKeyTooLarge   // key over MaxKeySize
	ErrValueTooLarge = sqlstore.ErrValueTooLarge // value over MaxValueSize
	ErrTooManyKeys   = sqlstore.ErrTooManyKeys   // batch over MaxBatchKeys
	ErrInvalidList   = sqlstore.ErrInvalidList   // contradictory ListOptions
	ErrSQLNotAllowed = sqlstore.ErrNotAllowed    // statement refused by the authorizer
	ErrNoRows        = sqlstore.ErrNoRows        // Cursor.One found no row
	ErrManyRows      = sqlstore.ErrManyRows      // Cursor.One found more than one
	ErrCursorClosed  = sqlstore.ErrCursorClosed  // cursor used after its event ended
	ErrOutsideEvent  = sqlstore.ErrOutsideEvent  // storage used outside its event
	ErrInvalidAlarm  = errors.New("durable: alarm time must be after the Unix epoch")
)

// Storage limits.
const (
	MaxKeySize   = sqlstore.MaxKeySize   // 2 KiB
	MaxValueSize = sqlstore.MaxValueSize // 2 MiB
	MaxBatchKeys = sqlstore.MaxBatchKeys // 128
)

// PanicError is the error an event fails with when its handler panicked.
type PanicError = actor.PanicError
