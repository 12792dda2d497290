package jsontext

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	for _, c := range []struct {
		in   string
		want error
	}{
		{`{"a":"plain"}`, nil},
		{`{"a":"é日本"}`, nil},
		{`{"a":"\u00e9\ud83d\ude00"}`, nil},      // é and a pair
		{`{"a":"\uD83D\uDE00"}`, nil},            // upper-case hex
		{`{"a":"\ufffd"}`, nil},                  // U+FFFD spelled out
		{`{"a":"\\ud800"}`, nil},                 // a backslash, then text
		{`{"a":"\\\ud83d\ude00"}`, nil},          // a backslash, then a pair
		{`{"a":"\"\ud83d\ude00\n"}`, nil},        // other escapes around a pair
		{"{\"a\":\"bad\xffbyte\"}", ErrNotUTF8},  // raw bytes
		{"{\"a\":\"\xed\xa0\x80\"}", ErrNotUTF8}, // a surrogate in raw UTF-8
		{`{"a":"\ud800"}`, ErrLoneSurrogate},
		{`{"a":"\udc00"}`, ErrLoneSurrogate},
		{`{"a":"\ud800x"}`, ErrLoneSurrogate},
		{`{"a":"\ud800\n"}`, ErrLoneSurrogate},
		{`{"a":"\ud800\u0041"}`, ErrLoneSurrogate},
		{`{"a":"\ud800\ud800\udc00"}`, ErrLoneSurrogate},
		{`{"a":"\ude00\ud83d"}`, ErrLoneSurrogate},
		{`{"\ud800":1}`, ErrLoneSurrogate}, // in a key
	} {
		if err := Check([]byte(c.in)); !errors.Is(err, c.want) {
			t.Errorf("%q: %v, want %v", c.in, err, c.want)
		}
	}
}

// Random JSON strings made of pieces, some of them half a pair: Check finds
// a lone surrogate exactly when one was put in, and when it finds none,
// encoding/json decodes the string to exactly the pieces' text.
func TestCheckAgainstEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	type piece struct {
		json, text string
		lone       bool
	}
	pieces := []func() piece{
		func() piece { return piece{"abc", "abc", false} },
		func() piece { return piece{"é", "é", false} },
		func() piece { return piece{`\\`, `\`, false} },
		func() piece { return piece{`\\u`, `\u`, false} },
		func() piece { return piece{`\"`, `"`, false} },
		func() piece { return piece{`\n`, "\n", false} },
		func() piece {
			r := rune(rng.IntN(0xD800))
			return piece{fmt.Sprintf(`\u%04x`, r), string(r), false}
		},
		func() piece {
			r := 0x10000 + rune(rng.IntN(0x100000))
			hi, lo := 0xD800+(r-0x10000)>>10, 0xDC00+(r-0x10000)&0x3FF
			return piece{fmt.Sprintf(`\u%04X\u%04x`, hi, lo), string(r), false}
		},
		func() piece { return piece{fmt.Sprintf(`\u%04x`, 0xD800+rng.IntN(0x800)), "", true} },
	}
	for range 20_000 {
		var js strings.Builder
		var text strings.Builder
		lone := false
		for range rng.IntN(6) {
			p := pieces[rng.IntN(len(pieces))]()
			js.WriteString(p.json)
			text.WriteString(p.text)
			lone = lone || p.lone
		}
		in := `"` + js.String() + `"`
		err := Check([]byte(in))
		var got string
		if jerr := json.Unmarshal([]byte(in), &got); jerr != nil {
			t.Fatalf("%s: %v", in, jerr)
		}
		switch {
		case lone && !errors.Is(err, ErrLoneSurrogate):
			// Two halves that happen to make a pair are a pair.
			if !strings.ContainsRune(got, '\uFFFD') {
				continue
			}
			t.Fatalf("%s: %v, want a lone surrogate", in, err)
		case !lone && err != nil:
			t.Fatalf("%s: %v", in, err)
		case err == nil && got != text.String():
			t.Fatalf("%s: decoded %q, want %q", in, got, text.String())
		}
	}
}
