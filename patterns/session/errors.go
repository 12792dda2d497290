package session

import "errors"

// ErrNotFound: no live session with that ID (unknown, deleted or expired).
var ErrNotFound = errors.New("session not found")

// ErrInvalid: an argument out of its range (a user ID, data, a TTL). The
// gateway checks every argument before it calls the Client, so it never
// sees this error; it is for Go callers.
var ErrInvalid = errors.New("invalid session argument")
