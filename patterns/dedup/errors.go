package dedup

import "errors"

// Errors of the dedup pattern.
var (
	// ErrUnknownUpstream: the request names an upstream that is not configured.
	ErrUnknownUpstream = errors.New("unknown upstream")
	// ErrUpstream: the upstream could not be reached or its answer was unusable
	// (including a body over the size limit).
	ErrUpstream = errors.New("upstream failed")
	// ErrInvalidPath: a request path that is not a valid escaping or has a
	// "." or ".." segment (see CheckPath). The gateway checks paths before
	// it calls the Client, so it never sees this error.
	ErrInvalidPath = errors.New("invalid fetch path")
)
