// Package lock is the built-in distributed lock: one object per name, with
// durable holder, token and fencing counter, TTL expiry by alarm, and FIFO
// waiters.
package lock
