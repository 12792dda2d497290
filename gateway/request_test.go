package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"
)

// decodeBody's answers to each kind of bad body, word for word: clients
// see these messages, so they must not change with how the body is parsed.
func TestDecodeBodyMessages(t *testing.T) {
	for _, tc := range []struct {
		body, want string // want "" = accepted
	}{
		{`{"a": 1, "b": "x"}`, ""},
		{`  {"a": 1}  `, ""},
		{``, ""},
		{`[1]`, "request body must be a JSON object"},
		{`{"a": 1} {"a": 2}`, "malformed JSON: data after the object"},
		{`{"a": 1} x`, "malformed JSON: data after the object"},
		{`{"a": 1, "c": 2}`, `malformed JSON: unknown field "c"`},
		{`{"A": 1}`, `malformed JSON: unknown field "A"`},
		{`{"a": 1, "a": 2}`, `malformed JSON: field "a" given twice`},
		{`{"a": "1"}`, "malformed JSON: field a has the wrong type (got string)"},
		{`{"a": 1`, "malformed JSON: unexpected EOF"},
		{`{"a": `, "malformed JSON: unexpected EOF"},
		{`{"a": tru}`, "malformed JSON: invalid character '}' in literal true (expecting 'e')"},
	} {
		var dst fieldNamesReq
		err := decodeBody([]byte(tc.body), &dst)
		var got string
		if err != nil {
			var apiErr *Error
			if !errors.As(err, &apiErr) || apiErr.Status != 400 || apiErr.Code != "invalid_argument" {
				t.Errorf("%q: error %v, want a 400 invalid_argument", tc.body, err)
				continue
			}
			got = apiErr.Message
		}
		if got != tc.want {
			t.Errorf("%q: message %q, want %q", tc.body, got, tc.want)
		}
	}
}

// BenchmarkDecodeBody: a rate-limit check's body through decodeBody, next
// to the json.Decoder it used before (DisallowUnknownFields, then a Token
// for trailing data; the field-name check as now).
func BenchmarkDecodeBody(b *testing.B) {
	body := []byte(`{"limit":1000000000,"window_ms":60000}`)
	b.Run("decodeBody", func(b *testing.B) {
		for b.Loop() {
			var req checkRequest
			if err := decodeBody(body, &req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("baseline-Decoder", func(b *testing.B) {
		for b.Loop() {
			var req checkRequest
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&req); err != nil {
				b.Fatal(err)
			}
			if _, err := dec.Token(); err != io.EOF {
				b.Fatal(err)
			}
			if err := checkFieldNames(body, &req); err != nil {
				b.Fatal(err)
			}
		}
	})
}
