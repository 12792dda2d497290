// Package durable is a runtime for Durable Objects in Go: stateful objects
// that are addressed by name, live exactly once, handle one event at a time,
// and each own a private SQLite database.
//
// # Objects, namespaces and stubs
//
// A class is a constructor registered on a [Runtime] under a name; its
// [Namespace] makes IDs ([Namespace.IDFromName], [Namespace.NewUniqueID],
// [Namespace.IDFromString]) and stubs ([Namespace.Get]). An ID is 32 bytes
// whose second half is a MAC of the first, keyed by the namespace and a
// secret kept in the data directory, so IDs cannot be forged and an ID of
// one namespace is refused by another. Getting a stub is free; the object is
// activated (its constructor runs) on its first event, and again after every
// eviction or reset.
//
// A stub delivers events: RPC calls to exported methods shaped
//
//	func (o *T) Method(ctx context.Context, arg A) (R, error)
//
// (argument and result optional, both JSON-encoded so the same call can
// cross processes; in process, a plain value — bools, numbers, strings,
// and arrays and structs of them with no encoding of their own — passes
// as itself, which is what JSON would give back) with [Call] and [Go],
// and HTTP requests to the object's
// ServeHTTP with [Stub.Fetch]. Calls made through one stub arrive in the
// order they were made.
//
// # Events and the input gate
//
// An object runs one event at a time, in arrival order: two events of one
// object never run concurrently, so handlers need no locks. A handler that
// must wait for slow external I/O calls [State.OutsideGate]: its turn ends
// (its writes so far are kept), other events run meanwhile, and the handler
// continues in a new turn when the I/O returns. Storage calls never open the
// gate: SQLite runs in-process and synchronously.
//
// Each object's queue is bounded ([Runtime.MaxQueue]); past it a call is
// refused at once with [ErrOverloaded] and had no effect. Stubs retry such
// calls with exponential backoff and jitter ([Runtime.StubRetry],
// [DefaultRetry]: five attempts within about 150 ms) and return
// ErrOverloaded when the retries run out; [Stub.WithRetry] changes that
// for one stub. durable serve turns retrying off: its HTTP API answers 503
// at once and its clients retry.
//
// # Storage: every event is a transaction
//
// [Storage] is a key-value API and SQL ([Storage.Exec]) over the object's
// own SQLite file. All writes of an event commit together when its handler
// returns, and reads see the event's own writes. A handler that returns an
// error keeps its writes (as in Cloudflare's runtime); use
// [Storage.Transaction] for writes that must be undone on error. A handler
// that panics has its writes discarded and its object reset: the next event
// builds a fresh instance from storage.
//
// An object that never writes never gets a file: files appear on the first
// write, copied from a template, under <dir>/<class>/<2 hex>/<id>.sqlite.
// [Namespace.SetSchema] builds a class's tables into its template, so its
// objects are born with them and their first write runs no DDL.
//
// # Output gate and group commit
//
// No result of an event (an RPC reply, an HTTP response) leaves the runtime
// before the writes that precede it are durable. Events that queue up while
// a commit is in flight run and commit together, one savepoint each, so a
// panic undoes only its own event. Object databases commit to their WAL
// without fsync; one node-level durability barrier then makes the pending
// commits of every object durable in a single sync round (syncfs on the data
// directory's filesystem by default) and releases the results those commits
// cover. A node serving many objects is therefore not capped by the disk's
// fsync rate. [DurabilityPerCommit] selects the simple design (an fsync per
// commit) for comparison.
//
// # Alarms
//
// Each object has at most one alarm ([Storage.SetAlarm]). It is stored with
// the event's writes and indexed in a node-level database, so evicted
// objects wake and alarms that came due while the process was down fire at
// start. Delivery is at least once: the stored alarm is kept until the
// object's Alarm method succeeds, and a failing handler is retried after 2 s,
// 4 s, 8 s … (plus up to 25 % jitter), at most [AlarmMaxRetries] times, with
// [AlarmInfo] telling it which retry it is. Setting an alarm inside the
// handler replaces the retry.
//
// # Eviction
//
// Objects idle for [Runtime.IdleTimeout] are evicted: their database is
// closed and their in-memory state is gone; storage remains. When more than
// [Runtime.MaxActive] objects are in memory, the least recently used idle
// ones go first. Each open database costs about 325 KiB of memory.
//
// # Time
//
// Alarms, idle eviction and the built-in patterns' TTLs read the runtime's
// [Clock]; tests use durabletest.Clock to move time without sleeping.
//
// # Caveats
//
//   - A handler must not call its own object through a stub while holding the
//     gate; that would wait forever, so it fails with [ErrReentrant].
//     Cross-object calls are allowed, but cycles of objects calling each
//     other inside their gates deadlock; step outside the gate first.
//   - Stepping outside the gate splits an event into turns: each turn is
//     atomic on its own, the event as a whole is not. If the object is
//     reset meanwhile, the call fails with [ErrReset] and the writes of its
//     earlier turns stand.
//   - A caller whose context ends stops waiting, but the event may still run
//     (and commit) if it had already been queued. [Call], [Stub.Invoke]
//     and [Stub.Fetch] on an object with nothing running run the event on
//     the caller's goroutine, alone in its batch (saving two goroutine
//     hand-offs); such a caller stops waiting only once its own handler
//     has returned.
//   - Storage must be used only from the object's handlers and constructor;
//     use from another goroutine fails with [ErrOutsideEvent] where it can
//     be detected.
//   - The barrier's default sync method, syncfs, syncs every file of the
//     data directory's filesystem: keep the data directory on a filesystem
//     not shared with unrelated heavy writers, or choose [SyncFdatasync].
package durable
