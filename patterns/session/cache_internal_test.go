package session

import (
	"fmt"
	"strings"
	"testing"
)

// checkSize fails unless c's size is the sum of its entries and within its
// budget.
func checkSize(t *testing.T, c *readCache) {
	t.Helper()
	sum := 0
	for _, s := range c.entries {
		sum += entrySize(s)
	}
	if sum != c.size || c.size > c.budget {
		t.Fatalf("size %d, entries sum to %d, budget %d", c.size, sum, c.budget)
	}
}

func TestReadCacheStaysWithinItsBudget(t *testing.T) {
	c := newReadCache(10 * (entryOverhead + 100))
	for i := range 1000 {
		s := Session{ID: fmt.Sprintf("id-%04d", i), UserID: "u", Data: []byte(strings.Repeat("d", i%80))}
		c.put(s)
		checkSize(t, &c)
		if got, ok := c.get(s.ID); !ok || got.ID != s.ID {
			t.Fatalf("the entry just put is missing: %+v, %v", got, ok)
		}
	}
	if len(c.entries) < 5 {
		t.Fatalf("%d entries left in a budget for ~10", len(c.entries))
	}
	// Replacing an entry replaces its size.
	for id := range c.entries {
		c.put(Session{ID: id, UserID: "u", Data: []byte("x")})
		checkSize(t, &c)
	}
	c.dropUser("u")
	if len(c.entries) != 0 || c.size != 0 {
		t.Fatalf("after dropUser: %d entries, size %d", len(c.entries), c.size)
	}
}

func TestReadCacheRefusesWhatCannotFit(t *testing.T) {
	c := newReadCache(entryOverhead + 10)
	c.put(Session{ID: "a", Data: []byte(strings.Repeat("d", 20))})
	if len(c.entries) != 0 || c.size != 0 {
		t.Fatalf("an entry over the budget was kept: %d entries, size %d", len(c.entries), c.size)
	}
	off := newReadCache(-1) // Options.CacheBytes < 0
	off.put(Session{ID: "a"})
	if len(off.entries) != 0 {
		t.Fatal("a cache with no budget kept an entry")
	}
}

func TestReadCacheDropExpired(t *testing.T) {
	c := newReadCache(DefaultCacheBytes)
	c.put(Session{ID: "old", ExpiresAtMS: 100})
	c.put(Session{ID: "new", ExpiresAtMS: 101})
	c.dropExpired(100)
	if _, ok := c.get("old"); ok {
		t.Fatal("an expired entry survived dropExpired")
	}
	if _, ok := c.get("new"); !ok {
		t.Fatal("a live entry was dropped")
	}
	checkSize(t, &c)
}
