// Package dedup coalesces identical concurrent GETs to an upstream into one
// upstream request.
//
// Each (upstream, path, query) key has its own object of the class
// "dedup", named by the key (or by its SHA-256 when long). The first caller
// of a key starts the upstream request outside the object's input gate;
// callers of the same key that arrive while it is in flight join it, and
// each receives its own copy of the status, headers (hop-by-hop ones
// removed) and buffered body. Nothing is kept once the upstream has
// answered: the next caller starts a new request. The objects never write
// storage, so they never get a database file.
//
// docs/patterns/dedup.md describes the design in full.
package dedup
