package ratelimit

import (
	"context"
	"sync"
	"testing"
	"time"
)

func ms(v int64) int64 { return t0.UnixMilli() + v }

// The alarm is set once, for when the oldest entry leaves the window, and
// an idle key ends with no rows, no retention and no alarm.
func TestCleanupEmptiesAnIdleLog(t *testing.T) {
	h := newHarness(t, "", t0)
	req := Request{Limit: 10, WindowMS: 60_000}
	h.check("k", req)
	if st := h.stats("k"); st.AlarmAtMS != ms(60_000) || st.RetentionMS != 60_000 {
		t.Fatalf("after the first check: %+v, want the alarm at +60000", st)
	}
	h.at(100)
	h.check("k", req)
	h.at(200)
	h.check("k", req)
	if st := h.stats("k"); st.AlarmAtMS != ms(60_000) || st.Entries != 3 {
		t.Fatalf("after three checks: %+v, want the same alarm and 3 entries", st)
	}
	h.at(60_000) // the entry at 0 leaves; the next alarm is 1 s away at least
	h.waitStats("k", "first cleanup", func(st Stats) bool { return st.Entries == 2 && st.AlarmAtMS == ms(61_000) })
	h.at(61_000)
	st := h.waitStats("k", "idle key emptied", func(st Stats) bool { return st.Entries == 0 && st.AlarmAtMS == 0 })
	if st.RetentionMS != 0 || st.Bucket {
		t.Fatalf("idle key still holds state: %+v", st)
	}
	// It starts again from nothing, exactly.
	h.expect("k", req, allowed(9, 60_000))
}

// The bucket's row goes once the bucket has been full for a window, and
// a key in steady use keeps it, with one cleanup run per window.
func TestCleanupDeletesAnIdleBucket(t *testing.T) {
	h := newHarness(t, "", t0)
	h.expect("k", tb(10, 10_000, 5), allowed(5, 5000)) // TAT 5000: full then, idle at 15000
	if st := h.stats("k"); !st.Bucket || st.BucketTATMS != ms(5000) || st.AlarmAtMS != ms(15_000) {
		t.Fatalf("stats %+v", st)
	}
	h.at(3000)
	h.check("k", tb(10, 10_000, 1)) // TAT 6000: the alarm stays
	h.at(12_000)
	h.check("k", tb(10, 10_000, 1)) // TAT 13000
	if st := h.stats("k"); st.AlarmAtMS != ms(15_000) {
		t.Fatalf("stats %+v: a check moved the alarm", st)
	}
	runs := h.rt.Stats().AlarmRuns
	h.at(15_000) // used since: the row stays, the alarm comes back at 13000 + 10000
	h.waitStats("k", "alarm re-armed", func(st Stats) bool { return st.Bucket && st.AlarmAtMS == ms(23_000) })
	h.at(22_999)
	if st := h.stats("k"); !st.Bucket {
		t.Fatalf("stats %+v: the row went before the bucket was full for a window", st)
	}
	h.at(23_000)
	h.waitStats("k", "bucket deleted", func(st Stats) bool { return !st.Bucket && st.AlarmAtMS == 0 })
	if n := h.rt.Stats().AlarmRuns - runs; n != 2 {
		t.Fatalf("%d cleanup runs, want 2", n)
	}
	h.expect("k", tb(10, 10_000, 1), allowed(9, 1000))
}

// Entries stay while a check with the largest window since the log was
// last empty could still count them, even if later checks use a shorter one.
func TestCleanupKeepsEntriesForTheLargestWindow(t *testing.T) {
	h := newHarness(t, "", t0)
	long := Request{Limit: 3, WindowMS: 10_000}
	short := Request{Limit: 3, WindowMS: 1000}
	h.check("k", long)
	h.at(5000)
	h.check("k", short)
	h.at(9000)
	h.expect("k", long, allowed(0, 10_000)) // counts 0 and 5000
	h.at(10_000)                            // the entry at 0 has left every window in use
	st := h.waitStats("k", "cleanup", func(st Stats) bool { return st.Entries == 2 })
	if st.RetentionMS != 10_000 || st.AlarmAtMS != ms(15_000) || st.OldestMS != ms(5000) {
		t.Fatalf("stats %+v, want the entry at 5000 kept for the 10 s window", st)
	}
	h.expect("k", long, allowed(0, 10_000)) // 5000, 9000 and this
	h.at(19_000)                            // 5000 and 9000 have left the 10 s window
	h.waitStats("k", "cleanup", func(st Stats) bool {
		return st.Entries == 1 && st.OldestMS == ms(10_000) && st.AlarmAtMS == ms(20_000)
	})
}

// Sub-second windows do not make an alarm per check: the cleanup runs at
// most about once a second.
func TestCleanupCoalescesShortWindows(t *testing.T) {
	h := newHarness(t, "", t0)
	req := Request{Limit: 1000, WindowMS: 10}
	for i := range int64(50) {
		h.at(i * 10)
		h.check("k", req)
		if st := h.stats("k"); st.AlarmAtMS != ms(1000) {
			t.Fatalf("after check %d: alarm at %d, want %d", i, st.AlarmAtMS, ms(1000))
		}
	}
	runs := h.rt.Stats().AlarmRuns
	h.at(1000)
	h.waitStats("k", "cleanup", func(st Stats) bool { return st.Entries == 0 && st.AlarmAtMS == 0 })
	if n := h.rt.Stats().AlarmRuns - runs; n != 1 {
		t.Fatalf("%d alarm runs, want 1", n)
	}
}

// A backlog bigger than one run is deleted over several runs in a row.
func TestCleanupInBatches(t *testing.T) {
	defer func(v int64) { maxDeletePerRun = v }(maxDeletePerRun)
	maxDeletePerRun = 3
	h := newHarness(t, "", t0)
	for range 10 {
		h.check("k", Request{Limit: 100, WindowMS: 100})
	}
	runs := h.rt.Stats().AlarmRuns
	h.at(1000)
	h.waitStats("k", "cleanup", func(st Stats) bool { return st.Entries == 0 && st.AlarmAtMS == 0 })
	if n := h.rt.Stats().AlarmRuns - runs; n != 4 {
		t.Fatalf("%d alarm runs, want 4 (3+3+3+1)", n)
	}
}

// Storage stays bounded: after a key is emptied its pages are reused.
func TestCleanupKeepsTheFileBounded(t *testing.T) {
	h := newHarness(t, "", t0)
	fill := func() { // 2000 rows, from 50 callers so that commits group
		var wg sync.WaitGroup
		for range 50 {
			wg.Go(func() {
				for range 40 {
					if _, err := h.c.Check(context.Background(), "k", Request{Limit: MaxLimit, WindowMS: 10}); err != nil {
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
	}
	fill()
	h.at(1000)
	first := h.waitStats("k", "cleanup", func(st Stats) bool { return st.Entries == 0 })
	if first.DatabaseBytes < 10*4096 {
		t.Fatalf("2000 rows took only %d bytes: the test measures nothing", first.DatabaseBytes)
	}
	fill()
	h.at(2000)
	second := h.waitStats("k", "cleanup", func(st Stats) bool { return st.Entries == 0 })
	if second.DatabaseBytes > first.DatabaseBytes {
		t.Fatalf("database grew from %d to %d bytes over the same load", first.DatabaseBytes, second.DatabaseBytes)
	}
}

// After a cleanup deletes the oldest entries, the rest are all inside the
// window and the count starts from the new oldest entry (the limiter
// caches where it starts instead of looking it up): a stale start would
// count the deleted entries again, or forget live ones.
func TestCountAfterCleanupStartsAtTheNewOldestEntry(t *testing.T) {
	h := newHarness(t, "", t0)
	req := Request{Limit: 10, WindowMS: 60_000}
	for i := range 3 {
		h.expect("k", req, allowed(int64(9-i), 60_000))
	}
	h.at(30_000)
	for i := range 4 {
		h.expect("k", req, allowed(int64(6-i), 60_000))
	}
	h.at(60_000) // the first three leave the window and the cleanup deletes them
	h.waitStats("k", "cleanup", func(st Stats) bool { return st.Entries == 4 })
	h.at(61_000)
	// Four live entries (from 30 s) and this one: 10 - 5 left.
	h.expect("k", req, allowed(5, 60_000))
	// After a restart the cache is rebuilt from storage: the same count.
	h.close()
	h = newHarness(t, h.dir, t0.Add(61_500*time.Millisecond))
	h.expect("k", req, allowed(4, 60_000))
}
