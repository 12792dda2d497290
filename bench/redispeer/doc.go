// Package redispeer serves the rate-limit, lock and session routes of the
// durable HTTP API (api.md) from Redis, written the way a careful engineer
// would write them, so that benchmarks compare durable with a fair peer.
//
// Every decision that must be atomic runs inside one Lua script: a sliding
// log per rate-limit key (a ZSET of allowed requests, one member per request,
// plus a running sum of their costs), GCRA for token_bucket, SET-if-absent
// locks with a fencing counter INCRed in the same script, and sessions kept
// as hashes with an absolute expiry and a per-user ZSET for listing and
// revoke-all. Rate limits and locks use Redis's own clock (TIME) so that the
// decision and the expiry agree; sessions take their timestamps from the
// server process.
//
// Keys are namespaced by prefix: "rl:" and "rlm:" (sliding log and its sum),
// "tb:" (token bucket), "lk:" and "lf:" (lock and fencing counter), "s:"
// (session) and "u:" (a user's session ids). Some scripts derive key names
// from values, so the peer needs a single Redis, not a cluster.
//
// Known differences from durable: waiting lock acquires poll Redis (every
// 1–20 ms) instead of queueing, so waiters are not served first-come
// first-served; and durability is whatever the Redis server is configured
// for (appendfsync always for a like-for-like comparison).
package redispeer
