package durable

// Test hooks into the runtime's internals.

// SetBeforeSyncRound installs f to run at the start of every durability
// barrier round (after Open). f may block to hold the round open.
func SetBeforeSyncRound(rt *Runtime, f func(round uint64, requests int)) {
	rt.barrier.BeforeRound = f
}

// ObjectFile returns where the object's database lives.
func ObjectFile(rt *Runtime, id ID) string { return objectPath(rt.Dir, id.ns.name, id.raw) }

// ActiveObjects returns how many objects are in memory.
func ActiveObjects(rt *Runtime) int {
	rt.mu.RLock()
	defer rt.mu.RUnlock()
	return len(rt.objects)
}

// EvictIdle runs one eviction pass now.
func EvictIdle(rt *Runtime) { rt.evictIdle() }

// SetSyncFunc replaces the durability barrier's sync (after Open).
func SetSyncFunc(rt *Runtime, f func() error) { rt.barrier.SyncFunc = f }

// RetryOf returns how s retries.
func RetryOf(s *Stub) Retry { return s.retry }
