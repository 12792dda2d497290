package session

import "errors"

// ErrNotFound: no live session with that ID (unknown, deleted or expired).
var ErrNotFound = errors.New("session not found")
