package durable

import (
	"encoding"
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"sync"
	"unicode/utf8"
)

// RPC arguments and results travel JSON-encoded (rpc.go), so a call means
// the same in-process and across processes. For a plain type the encoding
// is the identity: a value of it that JSON can encode decodes back to an
// equal value, and, holding no references, it is a copy of the caller's
// data, sharing nothing with it. Such values skip the encoding in process.
// The JSON round trip was ~6 % of the server's CPU under rate-limit checks
// (docs/benchmarks.md).
//
// A type is plain when it is a bool, an integer, a float, a string, an
// array of a plain type, or a struct whose fields are all exported, not
// embedded, plain, kept by JSON (no `json:"-"`) under distinct names; and
// when neither it nor its pointer has its own JSON or text encoding.
// Pointers, slices, maps, interfaces, channels and functions are not
// plain. A plain value travels as itself only when valueEncodable holds:
// strings must be valid UTF-8 (JSON would replace the bad bytes) and
// floats finite (JSON refuses them); otherwise it takes the JSON path and
// fares exactly as before.

var plainTypes sync.Map // reflect.Type → bool

var (
	jsonMarshalerType   = reflect.TypeFor[json.Marshaler]()
	jsonUnmarshalerType = reflect.TypeFor[json.Unmarshaler]()
	textMarshalerType   = reflect.TypeFor[encoding.TextMarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// isPlain reports whether t is plain (see above).
func isPlain(t reflect.Type) bool {
	if t == nil {
		return false
	}
	if v, ok := plainTypes.Load(t); ok {
		return v.(bool)
	}
	p := plainType(t)
	plainTypes.Store(t, p)
	return p
}

func plainType(t reflect.Type) bool {
	for _, i := range []reflect.Type{jsonMarshalerType, jsonUnmarshalerType, textMarshalerType, textUnmarshalerType} {
		if t.Implements(i) || reflect.PointerTo(t).Implements(i) {
			return false
		}
	}
	switch t.Kind() {
	case reflect.Bool, reflect.String,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return true
	case reflect.Array:
		return isPlain(t.Elem())
	case reflect.Struct:
		names := make(map[string]bool, t.NumField())
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() || f.Anonymous || !isPlain(f.Type) {
				return false
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				return false
			}
			if name == "" {
				name = f.Name
			}
			if names[name] {
				return false
			}
			names[name] = true
		}
		return true
	}
	return false
}

// valueEncodable reports whether JSON encodes v (of a plain type) and
// decodes it back to an equal value.
func valueEncodable(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.String:
		return utf8.ValidString(v.String())
	case reflect.Float32, reflect.Float64:
		f := v.Float()
		return !math.IsNaN(f) && !math.IsInf(f, 0)
	case reflect.Array:
		for i := range v.Len() {
			if !valueEncodable(v.Index(i)) {
				return false
			}
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if !valueEncodable(v.Field(i)) {
				return false
			}
		}
	}
	return true
}

// passesAsValue reports whether v may skip the JSON encoding.
func passesAsValue(v any) bool {
	return v != nil && isPlain(reflect.TypeOf(v)) && valueEncodable(reflect.ValueOf(v))
}
