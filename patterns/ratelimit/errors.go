package ratelimit

import "errors"

// ErrInvalid: a Request out of the ranges documented on Request. The
// gateway validates requests before they reach an object, so over HTTP this
// only ever shows as its own 400 answers.
var ErrInvalid = errors.New("ratelimit: invalid request")
