// Package client is a Go client of `durable serve`: typed methods for
// every route of its HTTP API (api.md), typed errors, and retries
// that never repeat a request whose first attempt may have taken effect
// unless repeating it is harmless.
//
//	c, err := client.New("http://127.0.0.1:8080")
//	c.Token = os.Getenv("DURABLE_TOKEN")
//	res, err := c.CheckRateLimit(ctx, "user:42", client.CheckRequest{Limit: 10, Window: time.Minute})
//	if err == nil && !res.Allowed {
//		// a 429 is an answer, not an error: wait res.RetryAfter
//	}
//
// Every method takes a context.Context first; it bounds the whole call,
// retries and their waits included.
//
// # Errors
//
// An error answer of the server is an *Error carrying its status, its
// api.md code and message, and Retry-After. Match codes with errors.Is
// and the sentinels (errors.Is(err, client.ErrLockHeld)), or with
// IsNotFound, IsConflict and IsTemporary. A rate-limit denial is not an
// error: CheckRateLimit returns it as a result. Fetch and Object return
// every answer as a Response, since their status is an upstream's or an
// application's. An argument the client can refuse without asking (an
// empty path parameter) is an *Error with Status 0 and the code
// invalid_argument.
//
// # Retries
//
// A failed request is sent again only when that is safe. Two kinds of
// failure are retryable:
//
//   - The request had no effect: the server answered 503 with the code
//     overloaded or unavailable (api.md says such a request had no
//     effect), or the connection could not be made (a failed dial: the
//     request never left the client). Every request is retried after
//     these.
//   - The outcome is unknown: the connection failed after the request
//     may have reached the server (reset, EOF, a timeout waiting for the
//     answer), or a 503 came without api.md's codes (from a proxy, say).
//     Only requests that are harmless to apply twice are retried after
//     these; the others return the error marked with ErrUnknownOutcome.
//
// Which operations are retried when the outcome is unknown, and why
// (each method's doc says the same):
//
//	retried: GETs (Healthz, Metrics, GetLock, GetSession,
//	  ListUserSessions, GetEvent, ListEvents/Events, GetDoc, Fetch, the
//	  DialDoc handshake): reads; Fetch's upstream request is a GET, safe
//	  by HTTP's definition.
//	retried: RenewLock: the same token and TTL again only moves the expiry
//	  a little later; a token that died in between answers not_owner.
//	retried: ReleaseLock: a released token is dead, so a second release
//	  cannot free anyone else's lock; it answers not_owner.
//	retried: PatchSession: it sets values (data, expiry = now + ttl), so
//	  twice is the same as once.
//	retried: DeleteSession, DeleteEvent, RevokeUserSessions: deleting
//	  twice is deleting once (the second may answer not_found, or count
//	  0 revoked).
//	retried: PutEvent: an upsert of the whole event; if the first attempt's
//	  event was delivered before the retry landed it is delivered again,
//	  with the same Idempotency-Key (delivery is at-least-once anyway).
//	retried: PutDocIf: conditional on the base version, so at most one of
//	  the attempts writes; the other answers conflict.
//	NOT retried: CheckRateLimit: an applied check spends budget, and a
//	  second one would spend it twice.
//	NOT retried: AcquireLock: the lost attempt may hold the lock under a
//	  token this client never saw; a second acquire would wait behind it
//	  or be refused by it. The lost grant expires after its TTL.
//	NOT retried: CreateSession: a retry could create a second session.
//	NOT retried: PutDoc (unconditional): sent twice it could overwrite an
//	  edit made in between, and is broadcast twice.
//	Object: retried only for GET, HEAD, OPTIONS, TRACE, or with an
//	  Idempotency-Key header (the rule of Go's http.Transport).
//
// An answer that arrives on a retry after an unknown outcome may describe
// what the lost attempt did (not_found from a DELETE that had already
// deleted, not_owner from a release that had already released): such an
// error answer is marked with ErrUnknownOutcome too, so
// errors.Is(err, client.ErrUnknownOutcome) tells "maybe it worked" apart
// from a plain failure.
//
// Other answers (4xx, 500, 502) are never retried: they are the server's
// verdict. A cancelled or expired ctx stops at once (an error from a
// request in flight is marked ErrUnknownOutcome too).
//
// Waits grow exponentially: BaseDelay·2^(n-1) before retry n, capped at
// MaxDelay, with jitter (a random wait in [½, 1) of that). A Retry-After
// header is honoured: the wait is at least Retry-After (plus up to 10 %),
// and when Retry-After is over MaxDelay the client gives up at once
// rather than retry early or wait longer than its cap. Retries stop after
// MaxAttempts attempts, and before a wait that would end past ctx's
// deadline; the last error is returned. See Retry for the parameters and
// their Default* values, and docs/client.md for the whole rule.
package client
