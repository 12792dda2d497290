package client

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Error codes of api.md ("Conventions"). Error.Code is one of them when the
// server answered with its JSON error body.
const (
	CodeInvalidArgument  = "invalid_argument"
	CodeUnauthorized     = "unauthorized"
	CodeNotFound         = "not_found"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeLockHeld         = "lock_held"
	CodeNotOwner         = "not_owner"
	CodeConflict         = "conflict"
	CodePayloadTooLarge  = "payload_too_large"
	CodeRateLimited      = "rate_limited"
	CodeBadGateway       = "bad_gateway"
	CodeOverloaded       = "overloaded"
	CodeUnavailable      = "unavailable"
	CodeInternal         = "internal"
)

// Error is an error answer of the server: its HTTP status and the
// {"error": {"code", "message"}} body of api.md.
//
// Compare with the sentinels below through errors.Is, which matches on the
// code: errors.Is(err, client.ErrLockHeld).
type Error struct {
	Status  int    // HTTP status; 0 for an argument refused before sending
	Code    string // api.md's error code; "" if the body was not an api.md error
	Message string // the server's human text
	// RetryAfter is the server's Retry-After header (0 if none).
	RetryAfter time.Duration
	// RequestID is the server's X-Request-Id, for its logs.
	RequestID string
}

func (e *Error) Error() string {
	if e.Status == 0 {
		return "durable: " + e.Code + ": " + e.Message
	}
	code := e.Code
	if code == "" {
		code = strings.ToLower(strings.ReplaceAll(http.StatusText(e.Status), " ", "_"))
	}
	return fmt.Sprintf("durable: %d %s: %s", e.Status, code, e.Message)
}

// Is reports whether target is an *Error with the same code (and the same
// status, if target has one), so the sentinels below work with errors.Is.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok || t.Code == "" || t.Code != e.Code {
		return false
	}
	return t.Status == 0 || t.Status == e.Status
}

// Sentinels for errors.Is, one per error code of api.md. They match any
// *Error with that code.
var (
	ErrInvalidArgument  = &Error{Code: CodeInvalidArgument, Message: "invalid argument"}
	ErrUnauthorized     = &Error{Code: CodeUnauthorized, Message: "unauthorized"}
	ErrNotFound         = &Error{Code: CodeNotFound, Message: "not found"}
	ErrMethodNotAllowed = &Error{Code: CodeMethodNotAllowed, Message: "method not allowed"}
	ErrLockHeld         = &Error{Code: CodeLockHeld, Message: "lock held"}
	ErrNotOwner         = &Error{Code: CodeNotOwner, Message: "not the lock's owner"}
	ErrConflict         = &Error{Code: CodeConflict, Message: "conflict"}
	ErrPayloadTooLarge  = &Error{Code: CodePayloadTooLarge, Message: "payload too large"}
	ErrBadGateway       = &Error{Code: CodeBadGateway, Message: "bad gateway"}
	ErrOverloaded       = &Error{Code: CodeOverloaded, Message: "overloaded"}
	ErrUnavailable      = &Error{Code: CodeUnavailable, Message: "unavailable"}
	ErrInternal         = &Error{Code: CodeInternal, Message: "internal error"}
)

// ErrUnknownOutcome marks an error after which the request may or may not
// have taken effect: the connection failed after the request may have
// reached the server, or a retry answered after such a failure (so the
// answer may describe the state the lost attempt left, e.g. not_found for
// a DELETE whose first attempt deleted). Test with errors.Is; the
// underlying error is still reachable (errors.Is(err, ErrNotOwner),
// errors.As(err, &netErr)).
var ErrUnknownOutcome = errors.New("durable: outcome unknown: the request may have taken effect")

// IsNotFound reports whether err is a not_found answer (unknown session,
// event, upstream, route).
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// IsConflict reports whether err is a 409 answer: lock_held, not_owner or
// conflict.
func IsConflict(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusConflict
}

// IsTemporary reports whether err says the request had no effect and may
// be sent again later: 503 overloaded or unavailable (after the client's
// own retries ran out).
func IsTemporary(err error) bool {
	return errors.Is(err, ErrOverloaded) || errors.Is(err, ErrUnavailable)
}

// invalid is an argument the client refuses before sending anything
// (Status 0: no answer).
func invalid(format string, args ...any) *Error {
	return &Error{Code: CodeInvalidArgument, Message: fmt.Sprintf(format, args...)}
}

// uncertainError wraps an answer received on a retry after a connection
// error: both the answer and ErrUnknownOutcome match it.
type uncertainError struct{ err error }

func (e *uncertainError) Error() string {
	return e.err.Error() + " (answer to a retry: an earlier attempt's outcome is unknown)"
}

func (e *uncertainError) Unwrap() []error { return []error{e.err, ErrUnknownOutcome} }
