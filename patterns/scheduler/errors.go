package scheduler

import "errors"

// Errors of the scheduler pattern.
var (
	// ErrNotFound: no event with that ID.
	ErrNotFound = errors.New("event not found")
	// ErrUnknownTarget: the event names a webhook that is not configured.
	ErrUnknownTarget = errors.New("unknown webhook target")
	// ErrBadCursor: a list cursor the server did not make.
	ErrBadCursor = errors.New("invalid cursor")
)
