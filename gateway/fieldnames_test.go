package gateway

import (
	"encoding/json"
	"reflect"
	"testing"
)

type fieldNamesReq struct {
	A *int64          `json:"a"`
	B *string         `json:"b"`
	D json.RawMessage `json:"data"`
}

var fieldNamesCases = []string{
	`{}`,
	`{"a":1}`,
	` { "a" : 1 , "b" : "x" } `,
	`{"a": -1.5e3, "b": "q\"uo,te}", "data": {"x": [1, {"y": "]}"}, "z"], "w": null}}`,
	`{"data": [[], {}, "", 0, true, false, null]}`,
	`{"data": "}", "a": 2}`,
	`{"A": 1}`,
	`{"a": 1, "a": 2}`,
	`{"a": 1, "data": {"a": 1, "a": 2}}`,
	`{"data": 1, "B": "x"}`,
	`{"c": 1}`,
	`{"\u0061": 1}`,
	`{"\u0061": 1, "a": 2}`,
	`{"b\u0000": "x"}`,
	`{"a":1,"b":"2","data":{}}`,
}

// The scanner agrees with encoding/json's tokenizer on valid objects.
func TestCheckFieldNamesScanner(t *testing.T) {
	known := fieldNames(reflect.TypeOf(&fieldNamesReq{}))
	for _, body := range fieldNamesCases {
		if !json.Valid([]byte(body)) {
			t.Fatalf("test case %q is not valid JSON", body)
		}
		got := checkFieldNames([]byte(body), &fieldNamesReq{})
		want := slowCheckFieldNames([]byte(body), known)
		if (got == nil) != (want == nil) || (got != nil && got.Error() != want.Error()) {
			t.Errorf("%s: scanner says %v, tokenizer says %v", body, got, want)
		}
	}
}

func FuzzCheckFieldNamesScanner(f *testing.F) {
	for _, c := range fieldNamesCases {
		f.Add(c)
	}
	known := fieldNames(reflect.TypeOf(&fieldNamesReq{}))
	f.Fuzz(func(t *testing.T, body string) {
		var obj map[string]json.RawMessage
		if json.Unmarshal([]byte(body), &obj) != nil {
			return // checkFieldNames only sees valid objects
		}
		got := checkFieldNames([]byte(body), &fieldNamesReq{})
		want := slowCheckFieldNames([]byte(body), known)
		if (got == nil) != (want == nil) || (got != nil && got.Error() != want.Error()) {
			t.Errorf("%q: scanner says %v, tokenizer says %v", body, got, want)
		}
	})
}
