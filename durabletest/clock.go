// Package durabletest helps test code built on durable: a clock that moves
// only when told to, so alarms, TTLs and eviction are tested without sleeping.
package durabletest

import (
	"container/heap"
	"sync"
	"time"

	"github.com/durableobjects/durable"
)

// Clock is a durable.Clock that stands still until Advance or Set moves it.
// Timers due at the new time are started in order of their due time, each
// in its own goroutine (as with time.AfterFunc), so they may run in any order.
type Clock struct {
	mu     sync.Mutex
	now    time.Time
	timers timerHeap
	seq    int
}

var _ durable.Clock = (*Clock)(nil)

// NewClock returns a clock set to start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc calls f once the clock has moved d past now.
func (c *Clock) AfterFunc(d time.Duration, f func()) durable.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	t := &timer{c: c, at: c.now.Add(d), f: f, seq: c.seq, index: -1}
	if d <= 0 {
		go f()
		t.fired = true
		return t
	}
	heap.Push(&c.timers, t)
	return t
}

// Advance moves the clock forward by d and fires the timers now due.
func (c *Clock) Advance(d time.Duration) { c.Set(c.Now().Add(d)) }

// Set moves the clock to t (never backwards) and fires the timers now due.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	if t.After(c.now) {
		c.now = t
	}
	var due []*timer
	for len(c.timers) > 0 && !c.timers[0].at.After(c.now) {
		tm := heap.Pop(&c.timers).(*timer)
		tm.fired = true
		due = append(due, tm)
	}
	c.mu.Unlock()
	for _, tm := range due {
		go tm.f()
	}
}

// HasTimer reports whether a timer waits to fire at exactly at. Tests use it
// to wait until the code under test has armed its timer before they move
// the clock past it.
func (c *Clock) HasTimer(at time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range c.timers {
		if t.at.Equal(at) {
			return true
		}
	}
	return false
}

// Pending returns how many timers wait to fire.
func (c *Clock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

type timer struct {
	c     *Clock
	at    time.Time
	f     func()
	seq   int
	index int
	fired bool
}

func (t *timer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	if t.fired || t.index < 0 {
		return false
	}
	heap.Remove(&t.c.timers, t.index)
	return true
}

type timerHeap []*timer

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if h[i].at.Equal(h[j].at) {
		return h[i].seq < h[j].seq
	}
	return h[i].at.Before(h[j].at)
}
func (h timerHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i]; h[i].index = i; h[j].index = j }
func (h *timerHeap) Push(x any)   { t := x.(*timer); t.index = len(*h); *h = append(*h, t) }
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	t.index = -1
	return t
}
