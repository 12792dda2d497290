package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/durableobjects/durable"
	"github.com/durableobjects/durable/patterns/collab"
	"github.com/durableobjects/durable/patterns/dedup"
	"github.com/durableobjects/durable/patterns/lock"
	"github.com/durableobjects/durable/patterns/scheduler"
	"github.com/durableobjects/durable/patterns/session"
)

// Error is an error with its HTTP answer. Handlers return it for input
// they reject; everything else goes through errorTable.
type Error struct {
	Status     int
	Code       string
	Message    string
	RetryAfter time.Duration // sets Retry-After when > 0
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// invalid returns a 400 invalid_argument error.
func invalid(format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "invalid_argument", Message: fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) *Error {
	return &Error{Status: http.StatusNotFound, Code: "not_found", Message: fmt.Sprintf(format, args...)}
}

// errorTable is the one place errors from the runtime and the patterns
// become HTTP answers (api.md, "Conventions"). Order matters: first match wins.
var errorTable = []struct {
	err        error
	status     int
	code       string
	retryAfter time.Duration
}{
	{durable.ErrOverloaded, http.StatusServiceUnavailable, "overloaded", time.Second},
	{durable.ErrClosed, http.StatusServiceUnavailable, "unavailable", time.Second},
	{durable.ErrInvalidID, http.StatusBadRequest, "invalid_argument", 0},
	{durable.ErrTooLarge, http.StatusRequestEntityTooLarge, "payload_too_large", 0},
	{durable.ErrBadRequestBody, http.StatusBadRequest, "invalid_argument", 0},
	{durable.ErrNoHandler, http.StatusNotFound, "not_found", 0},
	{durable.ErrForbiddenOrigin, http.StatusForbidden, "forbidden", 0},
	{lock.ErrUnavailable, http.StatusServiceUnavailable, "unavailable", time.Second},
	{lock.ErrHeld, http.StatusConflict, "lock_held", 0},
	{lock.ErrNotOwner, http.StatusConflict, "not_owner", 0},
	{collab.ErrConflict, http.StatusConflict, "conflict", 0},
	{collab.ErrTooLarge, http.StatusBadRequest, "invalid_argument", 0},
	{session.ErrNotFound, http.StatusNotFound, "not_found", 0},
	{scheduler.ErrNotFound, http.StatusNotFound, "not_found", 0},
	{scheduler.ErrUnknownTarget, http.StatusBadRequest, "invalid_argument", 0},
	{scheduler.ErrBadCursor, http.StatusBadRequest, "invalid_argument", 0},
	{dedup.ErrUnknownUpstream, http.StatusNotFound, "not_found", 0},
	{dedup.ErrUpstream, http.StatusBadGateway, "bad_gateway", 0},
}

// toAPIError maps err to its answer; unknown errors are internal, and their
// text (which may name files) never reaches the client.
func toAPIError(err error) (*Error, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e, true
	}
	for _, m := range errorTable {
		if errors.Is(err, m.err) {
			return &Error{Status: m.status, Code: m.code, Message: err.Error(), RetryAfter: m.retryAfter}, true
		}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return &Error{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "request canceled", RetryAfter: time.Second}, true
	}
	return &Error{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error"}, false
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func writeAPIError(w http.ResponseWriter, e *Error) {
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((e.RetryAfter+time.Second-1)/time.Second)))
	}
	writeJSON(w, e.Status, errorBody{errorDetail{e.Code, e.Message}})
}
