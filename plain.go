package durable

import (
	"encoding"
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"sync"
	"unicode"
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
// embedded, plain, kept by JSON (no `json:"-"`) under distinct, valid tag
// names, and not `omitzero` with an IsZero method of their own; and when
// neither it nor its pointer has its own JSON or text encoding. Pointers,
// slices, maps, interfaces, channels and functions are not plain. A plain
// value travels as itself only when valueEncodable holds: strings must be
// valid UTF-8 (JSON would replace the bad bytes), floats finite (JSON
// refuses them) and not -0 (`omitempty` would drop it and decode +0);
// otherwise it takes the JSON path and fares exactly as before.

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
			name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" || !validTagName(name) || hasOption(opts, "omitzero") && hasIsZero(f.Type) {
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

// validTagName reports whether encoding/json takes name as a field's name
// (an empty name means the field's own); it ignores any other, falling
// back to the field's name, which may then clash with another field.
func validTagName(name string) bool {
	for _, c := range name {
		if !unicode.IsLetter(c) && !unicode.IsDigit(c) && !strings.ContainsRune("!#$%&()*+-./:;<=>?@[]^_{|}~ ", c) {
			return false
		}
	}
	return true
}

func hasOption(opts, want string) bool {
	for opts != "" {
		var o string
		o, opts, _ = strings.Cut(opts, ",")
		if o == want {
			return true
		}
	}
	return false
}

// hasIsZero reports whether t or *t has an IsZero method, which omitzero
// asks instead of comparing with the zero value.
func hasIsZero(t reflect.Type) bool {
	_, ok := t.MethodByName("IsZero")
	_, pok := reflect.PointerTo(t).MethodByName("IsZero")
	return ok || pok
}

// valueEncodable reports whether JSON encodes v (of a plain type) and
// decodes it back to an equal value.
func valueEncodable(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.String:
		return utf8.ValidString(v.String())
	case reflect.Float32, reflect.Float64:
		f := v.Float()
		return !math.IsNaN(f) && !math.IsInf(f, 0) && !(f == 0 && math.Signbit(f))
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
