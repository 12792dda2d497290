package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/durableobjects/durable/internal/jsontext"
)

// DefaultMaxBody is the request body limit of every route (api.md).
const DefaultMaxBody = 1 << 20

// MaxPathParam is the longest path parameter, in bytes, after decoding.
const MaxPathParam = 256

// pathParam returns the decoded path parameter name, checked as api.md
// requires: 1-256 bytes of valid UTF-8 with no control characters.
func pathParam(r *http.Request, name string) (string, error) {
	v := r.PathValue(name)
	if err := checkParam(name, v); err != nil {
		return "", err
	}
	return v, nil
}

func checkParam(name, v string) error {
	switch {
	case v == "":
		return invalid("path parameter %s is empty", name)
	case len(v) > MaxPathParam:
		return invalid("path parameter %s is %d bytes, over %d", name, len(v), MaxPathParam)
	case !utf8.ValidString(v):
		return invalid("path parameter %s is not valid UTF-8", name)
	case strings.IndexFunc(v, unicode.IsControl) >= 0:
		return invalid("path parameter %s contains a control character", name)
	}
	return nil
}

// decodeJSON reads a JSON object from the body into dst, strictly: unknown
// fields, wrong types, trailing data and bodies over the limit are refused.
// An empty body leaves dst as it is (every field at its default); required
// fields are the caller's to check.
func decodeJSON(w http.ResponseWriter, r *http.Request, limit int64, dst any) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return &Error{Status: http.StatusRequestEntityTooLarge, Code: "payload_too_large", Message: "request body over " + formatBytes(limit)}
		}
		return invalid("the request body could not be read (the client was too slow or went away)")
	}
	return decodeBody(body, dst)
}

func decodeBody(body []byte, dst any) error {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil
	}
	if trimmed[0] != '{' {
		return invalid("request body must be a JSON object")
	}
	// encoding/json would turn bytes that are not UTF-8, and escapes of
	// half a surrogate pair, into U+FFFD and go on, storing something
	// other than what was sent.
	if err := jsontext.Check(trimmed); err != nil {
		return invalid("malformed JSON: %v", err)
	}
	// json.Unmarshal, not a Decoder: this runs on every request, and a
	// Decoder copies the body into its own buffer. Unknown fields, which
	// Unmarshal ignores, are refused by checkFieldNames with the message a
	// Decoder's DisallowUnknownFields gives.
	if err := json.Unmarshal(trimmed, dst); err != nil {
		var syntax *json.SyntaxError
		if errors.As(err, &syntax) {
			switch msg := syntax.Error(); {
			case strings.HasSuffix(msg, "after top-level value"):
				return invalid("malformed JSON: data after the object")
			case msg == "unexpected end of JSON input":
				return invalid("malformed JSON: unexpected EOF") // as a Decoder says it
			}
		}
		return invalid("malformed JSON: %s", jsonErrorText(err))
	}
	return checkFieldNames(trimmed, dst)
}

// checkFieldNames refuses fields that encoding/json accepted only by
// ignoring case ("LIMIT" for "limit") and fields given twice: api.md wants
// every field spelled as documented, once. obj is one valid JSON object
// (decodeBody decoded it already); its top-level keys are read by a small
// scanner, which hands a key with escapes or non-ASCII bytes to
// slowCheckFieldNames.
func checkFieldNames(obj []byte, dst any) error {
	known := fieldNames(reflect.TypeOf(dst))
	if known == nil {
		return nil
	}
	var seenBuf [8]string
	seen := seenBuf[:0]
	i := skipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return slowCheckFieldNames(obj, known)
	}
	i++
	for {
		i = skipSpace(obj, i)
		if i < len(obj) && obj[i] == ',' {
			i = skipSpace(obj, i+1)
		}
		if i >= len(obj) {
			return slowCheckFieldNames(obj, known)
		}
		if obj[i] == '}' {
			return nil
		}
		if obj[i] != '"' {
			return slowCheckFieldNames(obj, known)
		}
		j := i + 1
		for j < len(obj) && obj[j] != '"' {
			if obj[j] == '\\' || obj[j] < 0x20 || obj[j] >= 0x80 {
				return slowCheckFieldNames(obj, known)
			}
			j++
		}
		if j >= len(obj) {
			return slowCheckFieldNames(obj, known)
		}
		name := obj[i+1 : j]
		if !known[string(name)] {
			return invalid("malformed JSON: unknown field %q", name)
		}
		for _, n := range seen {
			if n == string(name) {
				return invalid("malformed JSON: field %q given twice", name)
			}
		}
		seen = append(seen, string(name))
		i = skipSpace(obj, j+1)
		if i >= len(obj) || obj[i] != ':' {
			return slowCheckFieldNames(obj, known)
		}
		if i = skipValue(obj, i+1); i < 0 {
			return slowCheckFieldNames(obj, known)
		}
	}
}

// fieldNames returns the JSON names of struct type t's fields (t may be a
// pointer to it), or nil if t is not a struct. Cached per type.
func fieldNames(t reflect.Type) map[string]bool {
	if v, ok := fieldNameCache.Load(t); ok {
		return v.(map[string]bool)
	}
	st := t
	for st.Kind() == reflect.Pointer {
		st = st.Elem()
	}
	var known map[string]bool
	if st.Kind() == reflect.Struct {
		known = map[string]bool{}
		for i := range st.NumField() {
			name, _, _ := strings.Cut(st.Field(i).Tag.Get("json"), ",")
			if name != "" && name != "-" {
				known[name] = true
			}
		}
	}
	fieldNameCache.Store(t, known)
	return known
}

var fieldNameCache sync.Map // reflect.Type -> map[string]bool

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns the index just past the JSON value starting at or
// after b[i], or -1 if it does not end.
func skipValue(b []byte, i int) int {
	i = skipSpace(b, i)
	depth := 0
	for i < len(b) {
		switch c := b[i]; c {
		case '"':
			i++
			for i < len(b) && b[i] != '"' {
				if b[i] == '\\' {
					i++
				}
				i++
			}
			if i >= len(b) {
				return -1
			}
			i++
		case '{', '[':
			depth++
			i++
		case '}', ']':
			if depth == 0 {
				return i // the end of the enclosing object
			}
			depth--
			i++
		case ',':
			if depth == 0 {
				return i
			}
			i++
		default:
			i++
		}
		if depth == 0 && i > 0 && (b[i-1] == '"' || b[i-1] == '}' || b[i-1] == ']') {
			return i
		}
	}
	return -1
}

// slowCheckFieldNames is checkFieldNames through encoding/json's tokenizer,
// which unescapes keys.
func slowCheckFieldNames(obj []byte, known map[string]bool) error {
	dec := json.NewDecoder(bytes.NewReader(obj))
	dec.Token() // '{'
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return invalid("malformed JSON: %s", jsonErrorText(err))
		}
		name, _ := tok.(string)
		if !known[name] {
			return invalid("malformed JSON: unknown field %q", name)
		}
		if seen[name] {
			return invalid("malformed JSON: field %q given twice", name)
		}
		seen[name] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return invalid("malformed JSON: %s", jsonErrorText(err))
		}
	}
	return nil
}

// jsonErrorText describes a decoding error without Go type names.
func jsonErrorText(err error) string {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		if typeErr.Field != "" {
			return "field " + typeErr.Field + " has the wrong type (got " + typeErr.Value + ")"
		}
		return "wrong type (got " + typeErr.Value + ")"
	}
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "json: ")
	return msg
}

func formatBytes(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return itoa(n>>20) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return itoa(n>>10) + " KiB"
	}
	return itoa(n) + " bytes"
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// writeJSON writes v as the JSON response with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal","message":"internal error"}}`)
	}
	writeEncoded(w, status, b)
}

// writeEncoded writes a JSON body encoded already (by writeJSON, or an
// object's result whose shape is the API's, relayed as it is).
func writeEncoded(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// rawJSON checks that a request field holding arbitrary JSON (session data,
// event payload) is at most limit bytes.
func rawJSONSize(name string, v json.RawMessage, limit int) error {
	if len(v) > limit {
		return invalid("%s is %d bytes, over %s", name, len(v), formatBytes(int64(limit)))
	}
	return nil
}
