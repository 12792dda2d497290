package dedup

import "errors"

// Errors of the dedup pattern.
var (
	// ErrUnknownUpstream: the request names an upstream that is not configured.
	ErrUnknownUpstream = errors.New("unknown upstream")
	// ErrUpstream: the upstream could not be reached or its answer was unusable
	// (including a body over the size limit).
	ErrUpstream = errors.New("upstream failed")
)
