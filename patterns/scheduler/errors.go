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
	// ErrInvalid: an event or a list request out of the ranges documented
	// on Spec and Client.List. The gateway checks requests with
	// Client.Validate before they reach an object, so over HTTP this only
	// ever shows as its own 400 answers.
	ErrInvalid = errors.New("invalid scheduler request")
)
