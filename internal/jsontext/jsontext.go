// Package jsontext checks what encoding/json lets through by changing it:
// bytes that are not UTF-8 and \u escapes of half a surrogate pair, both
// of which it decodes as U+FFFD without an error. The API refuses them as
// malformed JSON instead of storing something other than what was sent.
package jsontext

import (
	"bytes"
	"errors"
	"unicode/utf8"
)

// Errors of Check.
var (
	ErrNotUTF8       = errors.New("not valid UTF-8")
	ErrLoneSurrogate = errors.New(`a \u escape is half of a surrogate pair`)
)

// Check reports whether b, JSON text that encoding/json accepts, decodes
// to exactly what it spells: valid UTF-8 with every \uD800–\uDFFF escape
// in a high-low pair.
func Check(b []byte) error {
	if !utf8.Valid(b) {
		return ErrNotUTF8
	}
	// In valid JSON a backslash only occurs in a string, as an escape.
	pendingHigh := false // the escape just before was a high surrogate
	for i := 0; ; {
		j := bytes.IndexByte(b[i:], '\\')
		if j < 0 {
			break
		}
		if j > 0 && pendingHigh {
			return ErrLoneSurrogate // followed by text
		}
		i += j
		if i+1 < len(b) && b[i+1] != 'u' {
			if pendingHigh {
				return ErrLoneSurrogate // followed by another escape
			}
			i += 2 // \" \\ \/ \b \f \n \r \t
			continue
		}
		if i+5 >= len(b) {
			return nil // not JSON encoding/json accepts; the decoder says so
		}
		r := hex4(b[i+2 : i+6])
		i += 6
		switch {
		case r < 0:
			return nil // as above
		case r >= 0xD800 && r < 0xDC00: // high
			if pendingHigh {
				return ErrLoneSurrogate
			}
			pendingHigh = true
		case r >= 0xDC00 && r < 0xE000: // low
			if !pendingHigh {
				return ErrLoneSurrogate
			}
			pendingHigh = false
		default:
			if pendingHigh {
				return ErrLoneSurrogate
			}
		}
	}
	if pendingHigh {
		return ErrLoneSurrogate // at the end: then comes a quote
	}
	return nil
}

// hex4 decodes four hex digits, or returns -1.
func hex4(h []byte) rune {
	var r rune
	for _, c := range h {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}
