package redispeer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// maxBody is the whole-body limit of every route (api.md: default 1 MiB).
const maxBody = 1 << 20

// apiError is an error answered as {"error": {"code", "message"}}.
type apiError struct {
	status  int
	code    string
	message string
	header  http.Header // extra response headers (Allow, Retry-After)
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func errInvalid(format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, code: "invalid_argument", message: fmt.Sprintf(format, args...)}
}

func errNotFound(message string) *apiError {
	return &apiError{status: http.StatusNotFound, code: "not_found", message: message}
}

func errConflict(code, message string) *apiError {
	return &apiError{status: http.StatusConflict, code: code, message: message}
}

func errMethod(allow string) *apiError {
	return &apiError{status: http.StatusMethodNotAllowed, code: "method_not_allowed",
		message: "method not allowed; allowed: " + allow, header: http.Header{"Allow": {allow}}}
}

var errUnavailable = &apiError{status: http.StatusServiceUnavailable, code: "unavailable",
	message: "server is shutting down", header: http.Header{"Retry-After": {"1"}}}

func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		data = []byte(`{"error":{"code":"internal","message":"encode response"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(data, '\n'))
}

type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, e *apiError) {
	for k, v := range e.header {
		w.Header()[k] = v
	}
	writeJSON(w, e.status, map[string]errorBody{"error": {e.code, e.message}})
}

// decodeBody reads r's JSON body into v, strictly: unknown fields, wrong
// types and trailing data answer 400, a body over maxBody 413. An empty body
// decodes as {}.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return &apiError{status: http.StatusRequestEntityTooLarge, code: "payload_too_large",
				message: fmt.Sprintf("body over %d bytes", maxBody)}
		}
		return errInvalid("read body: %v", err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		data = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errInvalid("body: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errInvalid("body: data after the JSON value")
	}
	return nil
}

// checkParam validates a decoded path parameter: 1–256 bytes of valid UTF-8
// without control characters.
func checkParam(name, v string) error {
	if len(v) < 1 || len(v) > 256 {
		return errInvalid("%s must be 1–256 bytes, got %d", name, len(v))
	}
	if !utf8.ValidString(v) {
		return errInvalid("%s is not valid UTF-8", name)
	}
	for _, c := range v {
		if unicode.IsControl(c) {
			return errInvalid("%s contains a control character", name)
		}
	}
	return nil
}

// intIn returns *p, or def if p is nil (def < 0: required), after checking
// lo ≤ value ≤ hi.
func intIn(field string, p *int64, def, lo, hi int64) (int64, error) {
	if p == nil {
		if def < 0 {
			return 0, errInvalid("%s is required", field)
		}
		return def, nil
	}
	if *p < lo || *p > hi {
		return 0, errInvalid("%s must be in %d..%d, got %d", field, lo, hi, *p)
	}
	return *p, nil
}

// ceilSeconds formats ms as whole seconds rounded up, at least 1, for
// Retry-After.
func ceilSeconds(ms int64) string {
	return strconv.FormatInt(max((ms+999)/1000, 1), 10)
}
