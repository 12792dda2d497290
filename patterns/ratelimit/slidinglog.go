package ratelimit

import (
	"fmt"
	"math"
	"sync/atomic"

	"github.com/durableobjects/durable"
)

// The sliding log's statements; each is one indexed lookup or insert
// (TestQueryPlans checks that SQLite runs them so).
const (
	// qWindowStart: the cum before the first entry in the window, i.e. the
	// running total at the window's start (rl_log_ts covers it).
	qWindowStart = `SELECT cum - cost FROM rl_log WHERE ts > ?1 ORDER BY ts, cum LIMIT 1`
	// qFreedAt: the timestamp of the first entry whose running total
	// reaches ?1 (a rowid lookup).
	qFreedAt = `SELECT ts FROM rl_log WHERE cum >= ?1 ORDER BY cum LIMIT 1`
	qAppend  = `INSERT INTO rl_log (cum, ts, cost) VALUES (?1, ?2, ?3)`
	// qNewest, qOldest: the log's ends (rowid lookups).
	qNewest = `SELECT cum, ts FROM rl_log ORDER BY cum DESC LIMIT 1`
	qOldest = `SELECT ts, cum - cost FROM rl_log ORDER BY cum LIMIT 1`
	// qExpire deletes up to ?2 of the oldest entries with ts <= ?1.
	qExpire = `DELETE FROM rl_log WHERE cum IN (SELECT cum FROM rl_log WHERE ts <= ?1 ORDER BY ts, cum LIMIT ?2)`
)

// checkLog is one sliding-log check at clock time clock (ms).
//
// The log's timestamps never decrease: a check runs at the later of the
// clock and the newest entry, so if the clock steps back (a restart on a
// machine whose clock was set back) the key behaves as if time stood still
// at its newest entry until the clock catches up. That keeps cum and ts in
// the same order, which the one-lookup sum relies on, and never admits more
// than the limit. Durations in the result are relative to the clock.
func (l *limiter) checkLog(s *durable.Storage, clock int64, req Request) (Result, error) {
	now := max(clock, l.lastTs)
	cutoff := now - req.WindowMS // the window is (cutoff, now]

	// used = summed cost of the entries with ts > cutoff: the newest cum
	// minus the cum before the first such entry (covered by rl_log_ts;
	// cached when that entry is the oldest, as it is for a key whose log
	// the cleanup keeps to the window).
	var used, start int64
	if l.lastCum > 0 && l.lastTs > cutoff {
		if l.firstTs > cutoff {
			start = l.firstStart
		} else if err := queryRow(s, qWindowStart, []any{cutoff}, &start); err != nil {
			return Result{}, err
		}
		used = l.lastCum - start
	}

	// Keep entries for the largest window a check uses (docs: retention).
	w := req.WindowMS
	if l.lastCum > 0 {
		w = max(w, l.retention)
	}

	if used+req.Cost > req.Limit {
		// Denied, and not recorded. The request fits once enough of the
		// oldest entries in the window have left it: the first entry whose
		// cum reaches start+excess leaves at its ts + window.
		excess := used + req.Cost - req.Limit
		var ts int64
		if err := queryRow(s, qFreedAt, []any{start + excess}, &ts); err != nil {
			return Result{}, fmt.Errorf("find the entry to wait for: %w", err)
		}
		if err := l.setRetention(s, w); err != nil {
			return Result{}, err
		}
		return Result{RetryAfterMS: ts + req.WindowMS - clock}, nil
	}

	if err := l.ensureLog(s); err != nil {
		return Result{}, err
	}
	if l.lastCum > rebaseAbove {
		if err := l.rebase(s); err != nil {
			return Result{}, err
		}
	}
	first, firstStart := l.firstTs, l.firstStart
	if l.lastCum == 0 {
		first, firstStart = now, 0
	}
	if err := l.armAlarm(s, clock, first+w); err != nil {
		return Result{}, err
	}
	if err := l.setRetention(s, w); err != nil {
		return Result{}, err
	}
	cum := l.lastCum + req.Cost
	if err := exec(s, qAppend, cum, now, req.Cost); err != nil {
		return Result{}, err
	}
	l.firstTs, l.firstStart, l.lastCum, l.lastTs = first, firstStart, cum, now
	// This entry is the newest: the key is back to its full limit once it
	// leaves the window, at now + window.
	return Result{Allowed: true, Remaining: req.Limit - used - req.Cost, ResetMS: now + req.WindowMS - clock}, nil
}

// rebase moves the running totals down so the oldest row starts from 0,
// once they pass rebaseAbove (2^62: never, in practice, for a key that is
// ever idle for its window, since an emptied log starts again from 0). All
// rows move by the same amount; it must exceed the rows' span so that no
// row lands on another's key while they move. Until older rows have been
// deleted it does not, and the rebase waits for a later check.
func (l *limiter) rebase(s *durable.Storage) error {
	base := l.firstStart // the cum before the oldest row
	if base <= l.lastCum-base {
		if l.lastCum > math.MaxInt64-MaxLimit {
			return fmt.Errorf("ratelimit: running total %d about to overflow with %d of cost retained", l.lastCum, l.lastCum-base)
		}
		return nil
	}
	if err := exec(s, `UPDATE rl_log SET cum = cum - ?1`, base); err != nil {
		return err
	}
	l.lastCum -= base
	l.firstStart -= base
	rebases.Add(1)
	return nil
}

// rebases counts rebase runs (tests read it).
var rebases atomic.Int64
