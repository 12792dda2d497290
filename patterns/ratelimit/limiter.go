package ratelimit

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/durableobjects/durable"
)

// The limiter's storage (docs/patterns/ratelimit.md):
//
//   - rl_log: the sliding log, one row per ALLOWED request. cum is the
//     running total of cost up to and including the row, so it strictly
//     increases with insertion order, and so does ts (see checkLog): the
//     cost in (now-window, now] is the newest cum minus the cum before the
//     first row in the window, one lookup in rl_log_ts (which covers it).
//     Created by the key's first sliding-log entry.
//   - KV keyRetention: the largest window used since the log was last
//     empty; entries are deleted once older than it.
//   - KV keyBucket: the token bucket's one row: its theoretical arrival
//     time ms + frac/den, and the window of the check that set it (the row
//     goes once the bucket has been full that long).
//
// The two small records live in the KV table every object has. The log's
// table and index are the class schema (Namespace.SetSchema), so a key's
// database is born with them and its first check runs no DDL.
const logSchema = `
CREATE TABLE IF NOT EXISTS rl_log (
	cum  INTEGER PRIMARY KEY,
	ts   INTEGER NOT NULL,
	cost INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS rl_log_ts ON rl_log (ts, cum, cost);`

// KV keys.
const (
	keyRetention = "retention" // 8 bytes: int64 ms
	keyBucket    = "bucket"    // 32 bytes: int64 tat ms, frac, den, win
)

// cleanupDelay is the least time between a check and the cleanup alarm it
// sets, and between two cleanup runs: the alarm runs when the oldest entry
// leaves the retention window, but never more than about once a second per
// key, so sub-second windows do not turn every check into two events.
const cleanupDelay = int64(time.Second / time.Millisecond)

// Knobs that tests shrink.
var (
	// maxDeletePerRun bounds the rows one cleanup run deletes, so a key with
	// a huge backlog does not hold its gate for long; the next run follows
	// at once.
	maxDeletePerRun int64 = 10_000
	// rebaseAbove is where the running totals (cum) are moved back near 0
	// so they never overflow int64.
	rebaseAbove int64 = 1 << 62
)

// limiter is the object behind one rate-limit key. Its fields cache what
// storage holds, so a check costs one or two indexed reads and one write;
// the constructor rebuilds them after every activation (eviction, reset).
type limiter struct {
	st *durable.State

	stale  bool     // a storage error left the cache unsure: reload it
	hasLog logState // whether rl_log exists

	lastCum int64 // cum of the newest log row; 0 when the log is empty
	lastTs  int64 // ts of the newest log row
	firstTs int64 // ts of the oldest log row
	// firstStart is the cum before the oldest log row (its cum - cost):
	// the window's start whenever every row is inside the window.
	firstStart int64
	retention  int64 // 0 when unset

	hasBucket bool
	bucket    tat
	bucketWin int64

	alarmAt int64 // ms of the alarm we set; 0 when none
}

type logState int8

const (
	logUnknown logState = iota // not looked (the log is empty if it exists)
	logMissing
	logExists
)

func newLimiter(st *durable.State) any {
	l := &limiter{st: st}
	st.BlockConcurrencyWhile(l.load) // a failure fails the event and resets the object
	return l
}

// load reads the cache from storage. It creates nothing: a key that was
// never allowed anything has no file. It starts from the KV records, which
// cost nothing on an object with no file (SQL would open a scratch copy
// of the template): the retention is stored whenever the log has entries,
// so the log is read only if it may hold some.
func (l *limiter) load() error {
	*l = limiter{st: l.st}
	s := l.st.Storage()
	kv, err := s.GetMany([]string{keyRetention, keyBucket})
	if err != nil {
		return err
	}
	if v, ok := kv[keyRetention]; ok {
		if len(v) != 8 {
			return fmt.Errorf("ratelimit: stored retention is %d bytes", len(v))
		}
		l.retention = int64(binary.BigEndian.Uint64(v))
		if err := l.loadLog(); err != nil {
			return err
		}
	}
	if v, ok := kv[keyBucket]; ok {
		if len(v) != 32 {
			return fmt.Errorf("ratelimit: stored bucket is %d bytes", len(v))
		}
		l.hasBucket = true
		l.bucket = tat{ms: int64(binary.BigEndian.Uint64(v)), frac: int64(binary.BigEndian.Uint64(v[8:])), den: int64(binary.BigEndian.Uint64(v[16:]))}
		l.bucketWin = int64(binary.BigEndian.Uint64(v[24:]))
	}
	at, ok, err := s.GetAlarm()
	if err != nil {
		return err
	}
	if ok {
		l.alarmAt = at.UnixMilli()
	}
	return nil
}

// loadLog reads the oldest and newest log rows, if the log exists.
func (l *limiter) loadLog() error {
	s := l.st.Storage()
	l.lastCum, l.lastTs, l.firstTs, l.firstStart = 0, 0, 0, 0
	if err := l.lookForLog(s); err != nil {
		return err
	}
	if l.hasLog != logExists {
		return nil
	}
	err := queryRow(s, qNewest, nil, &l.lastCum, &l.lastTs)
	if errors.Is(err, durable.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	return queryRow(s, qOldest, nil, &l.firstTs, &l.firstStart)
}

// queryRow runs q with args and scans its one row into dest; it fails with
// durable.ErrNoRows if there is none.
func queryRow(s *durable.Storage, q string, args []any, dest ...any) error {
	c, err := s.Exec(q, args...)
	if err != nil {
		return err
	}
	return c.One(dest...)
}

// queryInt returns the one integer q selects, and whether there was a row.
func queryInt(s *durable.Storage, q string, args ...any) (int64, bool, error) {
	var v int64
	err := queryRow(s, q, args, &v)
	if errors.Is(err, durable.ErrNoRows) {
		return 0, false, nil
	}
	return v, err == nil, err
}

func exec(s *durable.Storage, q string, args ...any) error {
	c, err := s.Exec(q, args...)
	if err != nil {
		return err
	}
	return c.Close()
}

// begin reloads the cache if an earlier event left it unsure.
func (l *limiter) begin() error {
	if !l.stale {
		return nil
	}
	if err := l.load(); err != nil {
		l.stale = true
		return err
	}
	return nil
}

// write runs fn, which writes. If fn fails, the cache (which it may have
// changed) is reloaded before the next event. fn is not a nested
// transaction: its writes commit with the event even if it fails (see
// Check).
func (l *limiter) write(fn func(s *durable.Storage) error) error {
	err := fn(l.st.Storage())
	if err != nil {
		l.stale = true
	}
	return err
}

// lookForLog finds out, once per activation, whether the log table exists.
func (l *limiter) lookForLog(s *durable.Storage) error {
	if l.hasLog != logUnknown {
		return nil
	}
	n, _, err := queryInt(s, `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'rl_log'`)
	if err != nil {
		return err
	}
	l.hasLog = logMissing
	if n == 1 {
		l.hasLog = logExists
	}
	return nil
}

// ensureLog creates the sliding log's table if it does not exist.
//
// Objects created since the class had a schema (Register sets logSchema)
// are born with the table, and looking costs a read; creating it (DDL) was
// over half of a new key's first check (docs/benchmarks.md). Older objects
// get it here.
func (l *limiter) ensureLog(s *durable.Storage) error {
	if err := l.lookForLog(s); err != nil {
		return err
	}
	if l.hasLog == logExists {
		return nil
	}
	if err := exec(s, logSchema); err != nil {
		return err
	}
	l.hasLog = logExists
	return nil
}

// Check is the RPC method behind Client.Check.
func (l *limiter) Check(ctx context.Context, req Request) (Result, error) {
	req, err := req.normalize()
	if err != nil {
		return Result{}, err
	}
	if err := l.begin(); err != nil {
		return Result{}, err
	}
	// A check writes at most: the alarm, the retention, then its entry (or
	// the bucket's row). Each write stands on its own and the count comes
	// last, so a failure part-way leaves at most an early alarm or a longer
	// retention, never a half-counted request: no nested transaction (whose
	// savepoints would cost two more statements per check).
	now := l.st.Now().UnixMilli()
	var res Result
	err = l.write(func(s *durable.Storage) error {
		var err error
		if req.Algorithm == TokenBucket {
			res, err = l.checkBucket(s, now, req)
		} else {
			res, err = l.checkLog(s, now, req)
		}
		return err
	})
	if err != nil {
		return Result{}, fmt.Errorf("ratelimit: check: %w", err)
	}
	return res, nil
}

// armAlarm makes sure the cleanup alarm runs by at (but not before now +
// cleanupDelay): it sets the alarm only if none is set or the one set is
// later than needed, so most checks do not touch it.
func (l *limiter) armAlarm(s *durable.Storage, now, at int64) error {
	at = max(at, now+cleanupDelay)
	if l.alarmAt != 0 && l.alarmAt <= at {
		return nil
	}
	if err := s.SetAlarm(time.UnixMilli(at)); err != nil {
		return err
	}
	l.alarmAt = at
	return nil
}

// setRetention stores the largest window in use.
func (l *limiter) setRetention(s *durable.Storage, w int64) error {
	if w == l.retention {
		return nil
	}
	if err := s.Put(keyRetention, binary.BigEndian.AppendUint64(nil, uint64(w))); err != nil {
		return err
	}
	l.retention = w
	return nil
}

// setBucket stores the bucket's row.
func (l *limiter) setBucket(s *durable.Storage, t tat, win int64) error {
	v := make([]byte, 0, 32)
	for _, x := range [...]int64{t.ms, t.frac, t.den, win} {
		v = binary.BigEndian.AppendUint64(v, uint64(x))
	}
	if err := s.Put(keyBucket, v); err != nil {
		return err
	}
	l.bucket, l.bucketWin, l.hasBucket = t, win, true
	return nil
}

// Alarm deletes the log entries that have left the retention window and a
// token bucket that has been full for a whole window, and sets the next
// alarm if anything is left; an idle key ends with empty tables and no alarm.
func (l *limiter) Alarm(ctx context.Context, info durable.AlarmInfo) error {
	l.alarmAt = 0 // the running alarm is deleted unless we set a new one
	if err := l.begin(); err != nil {
		return err
	}
	now := l.st.Now().UnixMilli()
	return l.write(func(s *durable.Storage) error {
		// Rare, and several deletes: one nested transaction, so a failed
		// run (retried by the runtime) leaves nothing half done.
		return s.Transaction(func() error { return l.cleanup(s, now) })
	})
}

func (l *limiter) cleanup(s *durable.Storage, now int64) error {
	var next int64 // 0: nothing left to clean up
	if l.lastCum > 0 {
		cutoff := now - l.retention
		if l.firstTs <= cutoff {
			err := exec(s, qExpire, cutoff, maxDeletePerRun)
			if err != nil {
				return err
			}
			if err := l.loadLog(); err != nil {
				return err
			}
		}
		switch {
		case l.lastCum == 0:
			if _, err := s.Delete(keyRetention); err != nil {
				return err
			}
			l.retention = 0
		case l.firstTs <= cutoff:
			next = now // a backlog bigger than one run: go on at once
		default:
			next = l.firstTs + l.retention
		}
	}
	if l.hasBucket {
		if idle := l.bucket.ceil() + l.bucketWin; idle > now {
			next = minAlarm(next, idle)
		} else {
			if _, err := s.Delete(keyBucket); err != nil {
				return err
			}
			l.hasBucket = false
		}
	}
	if next == 0 {
		return nil
	}
	if next != now {
		next = max(next, now+cleanupDelay)
	}
	if err := s.SetAlarm(time.UnixMilli(next)); err != nil {
		return err
	}
	l.alarmAt = next
	return nil
}

func minAlarm(a, b int64) int64 {
	if a == 0 {
		return b
	}
	return min(a, b)
}

// Stats is the RPC method behind Client.Stats.
func (l *limiter) Stats(ctx context.Context) (Stats, error) {
	if err := l.begin(); err != nil {
		return Stats{}, err
	}
	s := l.st.Storage()
	st := Stats{RetentionMS: l.retention, Bucket: l.hasBucket, AlarmAtMS: l.alarmAt}
	if l.hasLog == logUnknown {
		if err := l.loadLog(); err != nil {
			return Stats{}, err
		}
	}
	if l.hasLog == logExists {
		err := queryRow(s, `SELECT count(*), coalesce(sum(cost), 0), coalesce(min(ts), 0), coalesce(max(ts), 0) FROM rl_log`,
			nil, &st.Entries, &st.LogCost, &st.OldestMS, &st.NewestMS)
		if err != nil {
			return Stats{}, err
		}
	}
	if l.hasBucket {
		st.BucketTATMS = l.bucket.ceil()
	}
	size, err := s.DatabaseSize()
	if err != nil {
		return Stats{}, err
	}
	st.DatabaseBytes = size
	return st, nil
}
