package lock

import "errors"

// Errors of the lock pattern.
var (
	// ErrHeld: the lock is held by someone else and the wait ran out.
	ErrHeld = errors.New("lock is held")
	// ErrNotOwner: the token is not the live holder's (released, expired or wrong).
	ErrNotOwner = errors.New("not the lock's owner")
	// ErrUnavailable: the runtime is shutting down while the acquire waited.
	ErrUnavailable = errors.New("server shutting down")
)
