package scheduler

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"unicode/utf8"
)

// A list cursor is the position after the last event of a page: its
// run_at_ms and id, authenticated with the scheduler's own random key so
// that a cursor the server did not make (forged, altered, or another
// scheduler's) is refused. It is base64url without padding of
//
//	version (1 byte) | run_at_ms (8 bytes, big-endian) | id | MAC (16 bytes)
//
// where MAC is HMAC-SHA256 of everything before it, truncated.
const (
	cursorVersion = 1
	cursorMACLen  = 16
)

func makeCursor(key []byte, runAt int64, id string) string {
	b := make([]byte, 0, 1+8+len(id)+cursorMACLen)
	b = append(b, cursorVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(runAt))
	b = append(b, id...)
	b = append(b, cursorMAC(key, b)...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// parseCursor returns the position a cursor made by makeCursor with key
// holds, or ErrBadCursor.
func parseCursor(key []byte, s string) (runAt int64, id string, err error) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) < 1+8+1+cursorMACLen || b[0] != cursorVersion {
		return 0, "", ErrBadCursor
	}
	body, mac := b[:len(b)-cursorMACLen], b[len(b)-cursorMACLen:]
	if !hmac.Equal(mac, cursorMAC(key, body)) {
		return 0, "", ErrBadCursor
	}
	id = string(body[9:])
	if !utf8.ValidString(id) {
		return 0, "", ErrBadCursor
	}
	return int64(binary.BigEndian.Uint64(body[1:9])), id, nil
}

func cursorMAC(key, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("scheduler cursor"))
	m.Write(body)
	return m.Sum(nil)[:cursorMACLen]
}
