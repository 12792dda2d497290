// Package session is the built-in session store, sharded across objects.
//
// Sessions live in Options.Shards objects of the class "session". A user's
// sessions all live in one shard, chosen by a hash of the user ID, so
// listing and revoking them is one indexed query in one object; a session
// ID carries its shard's number next to 128 random bits, so Get, Patch and
// Delete go straight to that shard. Each shard keeps its sessions in one
// SQL table and its one alarm at the earliest expiry among them; the alarm
// deletes expired rows and re-arms itself. An expired session is never
// returned, whether or not its row is gone yet. A shard also remembers the
// rows it has read or written lately (Options.CacheBytes), so reading them
// again reads no storage.
//
// docs/patterns/session.md describes the design in full.
package session
