package durable

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
)

// ID identifies one object of one namespace: 32 bytes, written as 64
// lowercase hex digits. The first half is derived from a name (IDFromName)
// or random (NewUniqueID); the second half is a MAC of the first, keyed by
// the namespace and the data directory's secret, so IDs cannot be forged
// and an ID of one namespace is refused by another.
type ID struct {
	raw  [32]byte
	ns   *Namespace
	name string
}

// String returns the ID as 64 lowercase hex digits.
func (id ID) String() string { return hex.EncodeToString(id.raw[:]) }

// Name returns the name the ID was made from, or "" for a unique ID or one
// parsed from a string.
func (id ID) Name() string { return id.name }

// Equal reports whether two IDs name the same object.
func (id ID) Equal(other ID) bool { return id.raw == other.raw && id.ns == other.ns }

// IsZero reports whether id is the zero ID, which names no object.
func (id ID) IsZero() bool { return id.ns == nil }

func (ns *Namespace) mac(first []byte) []byte {
	return ns.sum("mac:", first)[:16]
}

// sum returns the HMAC-SHA256 of prefix and data, keyed by the namespace.
// The keyed hashes are pooled: hmac.New hashes the key into both pads each
// time, which showed in profiles of requests that name their object.
func (ns *Namespace) sum(prefix string, data []byte) []byte {
	if ns.key == nil {
		// The key comes from the data directory's secret, read by Open: an
		// ID made before would name a different object than after.
		panic("durable: IDs of namespace " + ns.name + " used before Runtime.Open")
	}
	m, ok := ns.hmacs.Get().(hash.Hash)
	if ok {
		m.Reset()
	} else {
		m = hmac.New(sha256.New, ns.key)
	}
	m.Write([]byte(prefix))
	m.Write(data)
	out := m.Sum(nil)
	ns.hmacs.Put(m)
	return out
}

func (ns *Namespace) makeID(first []byte, name string) ID {
	id := ID{ns: ns, name: name}
	copy(id.raw[:16], first)
	copy(id.raw[16:], ns.mac(first))
	return id
}

// IDFromName returns the ID of the object called name. The same name gives
// the same ID in the same namespace and data directory, every time. Like
// every method making IDs, it panics before Runtime.Open (the key is the
// data directory's).
func (ns *Namespace) IDFromName(name string) ID {
	return ns.makeID(ns.sum("name:", []byte(name))[:16], name)
}

// NewUniqueID returns a new random ID; no other call returns it again.
func (ns *Namespace) NewUniqueID() ID {
	var first [16]byte
	rand.Read(first[:])
	return ns.makeID(first[:], "")
}

// IDFromString parses an ID made by this namespace. It fails with
// ErrInvalidID unless s is 64 lowercase hex digits carrying this
// namespace's MAC.
func (ns *Namespace) IDFromString(s string) (ID, error) {
	if len(s) != 64 {
		return ID{}, fmt.Errorf("%w: want 64 hex digits, got %d characters", ErrInvalidID, len(s))
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return ID{}, fmt.Errorf("%w: character %d is not a lowercase hex digit", ErrInvalidID, i)
		}
	}
	var raw [32]byte
	hex.Decode(raw[:], []byte(s))
	if !hmac.Equal(raw[16:], ns.mac(raw[:16])) {
		return ID{}, fmt.Errorf("%w: not made by namespace %q", ErrInvalidID, ns.name)
	}
	return ID{raw: raw, ns: ns}, nil
}
