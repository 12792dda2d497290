// Package lock is the built-in distributed lock: one object per name, with
// a durable holder, token and fencing counter, TTL expiry, and FIFO waiters.
//
// A grant is written to the lock object's storage (fencing + 1, a new
// 128-bit token, the expiry) before its reply leaves, so an acknowledged
// grant survives restarts and fencing values seen by clients never repeat.
// Expiry is checked against the runtime clock on every call: an expired
// lock is free whether or not anyone released it. Acquires that wait step
// outside the object's input gate, so the lock keeps serving renew,
// release and status calls meanwhile; the event that frees the lock (a
// release, or the alarm set at the grant's expiry while acquires wait)
// hands it to the first waiter still in time.
//
// Register the class with Register before the runtime opens; see
// docs/patterns/lock.md for the design and the HTTP routes of api.md
// that serve it.
package lock
