package session

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/durableobjects/durable"
)

// cleanupBatch bounds the expired rows one alarm run deletes, so one event
// stays short however many sessions expire at once; the alarm re-arms at
// once while more are due. A variable for tests.
var cleanupBatch = 10_000

// schema is created by every activation (a no-op once it exists). The
// index on user_id serves listing and revoking; the one on expires_at_ms
// serves the earliest expiry and the cleanup.
const schema = `
CREATE TABLE IF NOT EXISTS sessions (
	id            TEXT PRIMARY KEY,
	user_id       TEXT NOT NULL,
	data          TEXT NOT NULL,
	created_at_ms INTEGER NOT NULL,
	expires_at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_by_user ON sessions (user_id, expires_at_ms);
CREATE INDEX IF NOT EXISTS sessions_by_expiry ON sessions (expires_at_ms);
`

// shard is one object holding the sessions of the users hashed to it.
// Its table is the truth; cache remembers rows for reads (see readCache).
type shard struct {
	st    *durable.State
	cache readCache
}

func newShard(st *durable.State, cacheBytes int) *shard {
	st.BlockConcurrencyWhile(func() error {
		_, err := st.Storage().Exec(schema)
		return err
	})
	return &shard{st: st, cache: newReadCache(cacheBytes)}
}

type createArg struct {
	ID     string          `json:"id"`
	UserID string          `json:"user_id"`
	Data   json.RawMessage `json:"data"`
	TTLMS  int64           `json:"ttl_ms"`
}

type patchArg struct {
	ID      string          `json:"id"`
	HasData bool            `json:"has_data"`
	Data    json.RawMessage `json:"data"`
	TTLMS   int64           `json:"ttl_ms"` // 0 keeps the expiry
}

func (s *shard) now() int64 { return s.st.Now().UnixMilli() }

// Create stores a new session.
func (s *shard) Create(ctx context.Context, a createArg) (Session, error) {
	now := s.now()
	sess := Session{ID: a.ID, UserID: a.UserID, Data: a.Data, CreatedAtMS: now, ExpiresAtMS: now + a.TTLMS}
	if _, err := s.st.Storage().Exec(
		`INSERT INTO sessions (id, user_id, data, created_at_ms, expires_at_ms) VALUES (?, ?, ?, ?, ?)`,
		sess.ID, sess.UserID, string(sess.Data), sess.CreatedAtMS, sess.ExpiresAtMS); err != nil {
		return Session{}, err
	}
	// The alarm runs at the earliest expiry; a new session expiring no
	// earlier than it leaves that unchanged (one read, not rearm's two).
	at, set, err := s.st.Storage().GetAlarm()
	if err != nil {
		return Session{}, err
	}
	if !set || at.UnixMilli() > sess.ExpiresAtMS {
		if err := s.rearmFrom(at, set); err != nil {
			return Session{}, err
		}
	}
	s.cache.put(sess)
	return sess, nil
}

// Get returns a live session.
func (s *shard) Get(ctx context.Context, id string) (Session, error) {
	now := s.now()
	if sess, ok := s.cache.get(id); ok {
		if sess.ExpiresAtMS <= now {
			return Session{}, ErrNotFound
		}
		return sess, nil
	}
	c, err := s.st.Storage().Exec(
		`SELECT user_id, data, created_at_ms, expires_at_ms FROM sessions WHERE id = ? AND expires_at_ms > ?`,
		id, now)
	if err != nil {
		return Session{}, err
	}
	sess, err := scanSession(id, c)
	if err == nil {
		s.cache.put(sess)
	}
	return sess, err
}

func scanSession(id string, c *durable.Cursor) (Session, error) {
	sess := Session{ID: id}
	var data string
	if err := c.One(&sess.UserID, &data, &sess.CreatedAtMS, &sess.ExpiresAtMS); err != nil {
		if errors.Is(err, durable.ErrNoRows) {
			return Session{}, ErrNotFound
		}
		return Session{}, err
	}
	sess.Data = json.RawMessage(data)
	return sess, nil
}

// Patch replaces a live session's data and/or slides its expiry.
func (s *shard) Patch(ctx context.Context, a patchArg) (Session, error) {
	if !a.HasData && a.TTLMS <= 0 {
		return s.Get(ctx, a.ID)
	}
	s.cache.drop(a.ID)
	now := s.now()
	var c *durable.Cursor
	var err error
	const returning = ` WHERE id = ? AND expires_at_ms > ? RETURNING user_id, data, created_at_ms, expires_at_ms`
	switch {
	case a.HasData && a.TTLMS > 0:
		c, err = s.st.Storage().Exec(`UPDATE sessions SET data = ?, expires_at_ms = ?`+returning,
			string(a.Data), now+a.TTLMS, a.ID, now)
	case a.HasData:
		c, err = s.st.Storage().Exec(`UPDATE sessions SET data = ?`+returning, string(a.Data), a.ID, now)
	default:
		c, err = s.st.Storage().Exec(`UPDATE sessions SET expires_at_ms = ?`+returning, now+a.TTLMS, a.ID, now)
	}
	if err != nil {
		return Session{}, err
	}
	sess, err := scanSession(a.ID, c)
	if err != nil {
		return Session{}, err
	}
	if a.TTLMS > 0 {
		if err := s.rearm(); err != nil {
			return Session{}, err
		}
	}
	s.cache.put(sess)
	return sess, nil
}

// Delete removes a session; it answers ErrNotFound unless the session was
// live (an expired row is removed all the same).
func (s *shard) Delete(ctx context.Context, id string) error {
	s.cache.drop(id)
	c, err := s.st.Storage().Exec(`DELETE FROM sessions WHERE id = ? RETURNING expires_at_ms`, id)
	if err != nil {
		return err
	}
	var exp int64
	if err := c.One(&exp); err != nil {
		if errors.Is(err, durable.ErrNoRows) {
			return ErrNotFound
		}
		return err
	}
	if err := s.rearm(); err != nil {
		return err
	}
	if exp <= s.now() {
		return ErrNotFound
	}
	return nil
}

// List returns a user's live sessions, oldest first.
func (s *shard) List(ctx context.Context, userID string) ([]Info, error) {
	c, err := s.st.Storage().Exec(
		`SELECT id, created_at_ms, expires_at_ms FROM sessions
		 WHERE user_id = ? AND expires_at_ms > ? ORDER BY created_at_ms, id`, userID, s.now())
	if err != nil {
		return nil, err
	}
	defer c.Close()
	list := []Info{}
	for c.Next() {
		var in Info
		if err := c.Scan(&in.ID, &in.CreatedAtMS, &in.ExpiresAtMS); err != nil {
			return nil, err
		}
		list = append(list, in)
	}
	return list, c.Err()
}

// Revoke deletes every session of a user and returns how many were live.
func (s *shard) Revoke(ctx context.Context, userID string) (int, error) {
	s.cache.dropUser(userID)
	var live int
	c, err := s.st.Storage().Exec(`SELECT count(*) FROM sessions WHERE user_id = ? AND expires_at_ms > ?`, userID, s.now())
	if err != nil {
		return 0, err
	}
	if err := c.One(&live); err != nil {
		return 0, err
	}
	c, err = s.st.Storage().Exec(`DELETE FROM sessions WHERE user_id = ?`, userID)
	if err != nil {
		return 0, err
	}
	if c.RowsWritten() == 0 {
		return 0, nil
	}
	return live, s.rearm()
}

// Stats reports the shard's stored rows and alarm.
func (s *shard) Stats(ctx context.Context) (ShardStats, error) {
	var st ShardStats
	c, err := s.st.Storage().Exec(`SELECT count(*) FROM sessions`)
	if err != nil {
		return st, err
	}
	if err := c.One(&st.Rows); err != nil {
		return st, err
	}
	at, ok, err := s.st.Storage().GetAlarm()
	if ok {
		st.AlarmAtMS = at.UnixMilli()
	}
	return st, err
}

// Alarm deletes expired sessions and re-arms for the earliest expiry left.
func (s *shard) Alarm(ctx context.Context, _ durable.AlarmInfo) error {
	now := s.now()
	s.cache.dropExpired(now)
	if _, err := s.st.Storage().Exec(
		`DELETE FROM sessions WHERE rowid IN
		 (SELECT rowid FROM sessions WHERE expires_at_ms <= ? ORDER BY expires_at_ms LIMIT ?)`,
		now, cleanupBatch); err != nil {
		return err
	}
	return s.rearm()
}

// rearm sets the alarm to the earliest expiry among the stored sessions
// (expired ones included: their alarm is then due at once), or deletes it
// when there are none. Every write that adds, removes or moves an expiry
// calls it, so the alarm is never later than a session's expiry, and never
// earlier than the earliest one.
func (s *shard) rearm() error {
	cur, set, err := s.st.Storage().GetAlarm()
	if err != nil {
		return err
	}
	return s.rearmFrom(cur, set)
}

// rearmFrom is rearm for a caller that has read the alarm (cur, set) in
// this event already.
func (s *shard) rearmFrom(cur time.Time, set bool) error {
	st := s.st.Storage()
	c, err := st.Exec(`SELECT min(expires_at_ms) FROM sessions`)
	if err != nil {
		return err
	}
	var earliest any
	if err := c.One(&earliest); err != nil {
		return err
	}
	ms, ok := earliest.(int64)
	switch {
	case !ok && set:
		return st.DeleteAlarm()
	case ok && (!set || cur.UnixMilli() != ms):
		return st.SetAlarm(time.UnixMilli(ms))
	}
	return nil
}
