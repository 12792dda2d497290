package lock

import "errors"

// Errors of the lock pattern. Client methods wrap them with the lock's
// name; test for them with errors.Is. The gateway answers them with the
// codes of api.md: ErrHeld 409 lock_held, ErrNotOwner 409 not_owner,
// ErrUnavailable 503 unavailable (with Retry-After).
var (
	// ErrHeld: the lock is held by someone else and the wait ran out (or
	// the acquire did not wait).
	ErrHeld = errors.New("lock is held")
	// ErrNotOwner: the token is not the live holder's (released, expired or wrong).
	ErrNotOwner = errors.New("not the lock's owner")
	// ErrUnavailable: the runtime is shutting down while the acquire waited
	// (or before it could begin to wait).
	ErrUnavailable = errors.New("server shutting down")
)
