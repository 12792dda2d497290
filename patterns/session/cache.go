package session

// DefaultCacheBytes is Options.CacheBytes when it is 0.
const DefaultCacheBytes = 1 << 20

// entryOverhead is what a cached session costs beyond the bytes of its
// strings: the map slot and the Session's fields.
const entryOverhead = 160

// readCache is a shard's memory of the sessions it has read or written, so
// that reading one again reads no storage. An entry is the session's row as
// stored, expired or not: every method that writes a row drops its entry
// before writing and puts it back only when the method succeeds, so an
// error leaves the session to be read again. A failed commit or a panic
// drops the shard's instance, cache and all. Entries are dropped at random
// when the budget is spent.
type readCache struct {
	budget  int // bytes; 0 keeps nothing
	size    int
	entries map[string]Session
}

func newReadCache(budget int) readCache {
	return readCache{budget: max(budget, 0), entries: make(map[string]Session)}
}

func entrySize(s Session) int { return entryOverhead + len(s.ID) + len(s.UserID) + len(s.Data) }

func (c *readCache) get(id string) (Session, bool) {
	s, ok := c.entries[id]
	return s, ok
}

// put remembers s, dropping other entries while s does not fit.
func (c *readCache) put(s Session) {
	c.drop(s.ID)
	n := entrySize(s)
	if n > c.budget {
		return
	}
	for c.size+n > c.budget {
		for id := range c.entries { // a random entry
			c.drop(id)
			break
		}
	}
	c.entries[s.ID] = s
	c.size += n
}

func (c *readCache) drop(id string) {
	if s, ok := c.entries[id]; ok {
		delete(c.entries, id)
		c.size -= entrySize(s)
	}
}

// dropUser forgets every session of userID.
func (c *readCache) dropUser(userID string) {
	for id, s := range c.entries {
		if s.UserID == userID {
			c.drop(id)
		}
	}
}

// dropExpired forgets the sessions expired at nowMS.
func (c *readCache) dropExpired(nowMS int64) {
	for id, s := range c.entries {
		if s.ExpiresAtMS <= nowMS {
			c.drop(id)
		}
	}
}
