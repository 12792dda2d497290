package session_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/durableobjects/durable"
	"github.com/durableobjects/durable/durabletest"
	"github.com/durableobjects/durable/patterns/session"
)

var start = time.UnixMilli(1_700_000_000_000)

type env struct {
	rt    *durable.Runtime
	c     *session.Client
	clock *durabletest.Clock
	dir   string
}

// open starts a runtime with the session class on dir (a new one if "").
func open(t testing.TB, dir string, clock *durabletest.Clock, shards int) *env {
	t.Helper()
	return openWith(t, dir, clock, session.Options{Shards: shards})
}

// openWith is open with every option.
func openWith(t testing.TB, dir string, clock *durabletest.Clock, opts session.Options) *env {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	rt := durable.NewRuntime(dir)
	if clock != nil {
		rt.Clock = clock
	}
	c, err := session.Register(rt, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Open(); err != nil {
		t.Fatal(err)
	}
	e := &env{rt: rt, c: c, clock: clock, dir: dir}
	t.Cleanup(func() { e.close(t) })
	return e
}

func (e *env) close(t testing.TB) {
	if err := e.rt.Close(context.Background()); err != nil {
		t.Errorf("close: %v", err)
	}
}

func newEnv(t testing.TB) *env {
	return open(t, "", durabletest.NewClock(start), 0)
}

var ctx = context.Background()

func mustCreate(t testing.TB, e *env, p session.CreateParams) session.Session {
	t.Helper()
	s, err := e.c.Create(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// waitFor polls cond until it holds, failing after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (e *env) stats(t *testing.T, userID string) session.ShardStats {
	t.Helper()
	st, err := e.c.Stats(ctx, session.UserShard(userID, e.c.Shards()))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestCreateGetPatchDelete(t *testing.T) {
	e := newEnv(t)
	s := mustCreate(t, e, session.CreateParams{UserID: "alice", Data: json.RawMessage(`{ "cart": [1, 2] }`)})
	if len(s.ID) < 22 || s.UserID != "alice" || s.CreatedAtMS != start.UnixMilli() ||
		s.ExpiresAtMS != start.Add(session.DefaultTTL).UnixMilli() || string(s.Data) != `{"cart":[1,2]}` {
		t.Fatalf("created %+v", s)
	}
	got, err := e.c.Get(ctx, s.ID)
	if err != nil || got.ID != s.ID || string(got.Data) != `{"cart":[1,2]}` || got.ExpiresAtMS != s.ExpiresAtMS {
		t.Fatalf("Get = %+v, %v", got, err)
	}

	e.clock.Advance(time.Minute)
	// Data absent: kept; TTL slides from now.
	got, err = e.c.Patch(ctx, s.ID, session.PatchParams{TTL: time.Hour})
	if err != nil || string(got.Data) != `{"cart":[1,2]}` || got.ExpiresAtMS != start.Add(time.Minute+time.Hour).UnixMilli() || got.CreatedAtMS != s.CreatedAtMS {
		t.Fatalf("Patch ttl = %+v, %v", got, err)
	}
	// Data present: replaced whole, expiry kept.
	got, err = e.c.Patch(ctx, s.ID, session.PatchParams{Data: json.RawMessage(`"x"`)})
	if err != nil || string(got.Data) != `"x"` || got.ExpiresAtMS != start.Add(time.Minute+time.Hour).UnixMilli() {
		t.Fatalf("Patch data = %+v, %v", got, err)
	}
	// Data null: set to null.
	got, err = e.c.Patch(ctx, s.ID, session.PatchParams{Data: json.RawMessage(`null`)})
	if err != nil || string(got.Data) != `null` {
		t.Fatalf("Patch null = %+v, %v", got, err)
	}
	// Nothing: as GET.
	if got, err = e.c.Patch(ctx, s.ID, session.PatchParams{}); err != nil || string(got.Data) != "null" {
		t.Fatalf("empty Patch = %+v, %v", got, err)
	}

	if err := e.c.Delete(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"get":    second(e.c.Get(ctx, s.ID)),
		"patch":  second(e.c.Patch(ctx, s.ID, session.PatchParams{TTL: time.Hour})),
		"delete": e.c.Delete(ctx, s.ID),
	} {
		if !errors.Is(err, session.ErrNotFound) {
			t.Errorf("%s after delete: %v, want ErrNotFound", name, err)
		}
	}
	if st := e.stats(t, "alice"); st.Rows != 0 || st.AlarmAtMS != 0 {
		t.Fatalf("after delete: %+v", st)
	}
}

func second[T any](_ T, err error) error { return err }

// GetJSON and PatchJSON return exactly what encoding the typed results
// gives (the server relays these bytes as the response body), and the same
// errors.
func TestJSONFormsEncodeTheTypedResult(t *testing.T) {
	e := newEnv(t)
	s := mustCreate(t, e, session.CreateParams{UserID: "bob", Data: json.RawMessage(`{"a": "<b>&"}`)})
	encoded := func(v session.Session, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	want := encoded(e.c.Get(ctx, s.ID))
	if got, err := e.c.GetJSON(ctx, s.ID); err != nil || string(got) != want {
		t.Fatalf("GetJSON = %s, %v; want %s", got, err, want)
	}
	e.clock.Advance(time.Minute)
	got, err := e.c.PatchJSON(ctx, s.ID, session.PatchParams{Data: json.RawMessage(`[1, 2]`), TTL: time.Hour})
	if want := encoded(e.c.Get(ctx, s.ID)); err != nil || string(got) != want || !strings.Contains(want, `"data":[1,2]`) {
		t.Fatalf("PatchJSON = %s, %v; want %s with the new data", got, err, want)
	}
	if _, err := e.c.PatchJSON(ctx, s.ID, session.PatchParams{Data: json.RawMessage(`{`)}); !errors.Is(err, session.ErrInvalid) {
		t.Fatalf("PatchJSON with bad data: %v, want ErrInvalid", err)
	}
	if err := e.c.Delete(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"GetJSON":        second(e.c.GetJSON(ctx, s.ID)),
		"PatchJSON":      second(e.c.PatchJSON(ctx, s.ID, session.PatchParams{TTL: time.Hour})),
		"GetJSON bad id": second(e.c.GetJSON(ctx, "not-an-id")),
	} {
		if !errors.Is(err, session.ErrNotFound) {
			t.Errorf("%s: %v, want ErrNotFound", name, err)
		}
	}
}

func TestIDs(t *testing.T) {
	e := newEnv(t)
	seen := map[string]bool{}
	for i := range 200 {
		s := mustCreate(t, e, session.CreateParams{UserID: fmt.Sprint("u", i)})
		if len(s.ID) != session.IDLen || len(s.ID) < 22 || strings.ContainsAny(s.ID, "+/=") || seen[s.ID] {
			t.Fatalf("bad or repeated ID %q", s.ID)
		}
		seen[s.ID] = true
		shard, ok := session.ParseID(s.ID)
		if !ok || shard != session.UserShard(s.UserID, e.c.Shards()) {
			t.Fatalf("ParseID(%q) = %d, %v", s.ID, shard, ok)
		}
	}
	// IDs the package never made are not found, without an error of
	// another kind: wrong length, bad alphabet, a shard past Shards.
	valid := mustCreate(t, e, session.CreateParams{UserID: "x"}).ID
	for _, id := range []string{"", "abc", valid + "A", valid[:len(valid)-1], strings.Repeat("!", session.IDLen),
		"__" + valid[2:], // shard 0xffff
		strings.Repeat("A", session.IDLen),
		"A\n" + valid[2:],
	} {
		if _, err := e.c.Get(ctx, id); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("Get(%q) = %v, want ErrNotFound", id, err)
		}
	}
}

func TestExpiryBoundary(t *testing.T) {
	e := newEnv(t)
	s := mustCreate(t, e, session.CreateParams{UserID: "bob", TTL: session.MinTTL})
	e.clock.Set(time.UnixMilli(s.ExpiresAtMS - 1))
	if _, err := e.c.Get(ctx, s.ID); err != nil {
		t.Fatalf("1 ms before expiry: %v", err)
	}
	if l, _ := e.c.ListByUser(ctx, "bob"); len(l) != 1 {
		t.Fatalf("1 ms before expiry: list %v", l)
	}
	e.clock.Set(time.UnixMilli(s.ExpiresAtMS))
	if _, err := e.c.Get(ctx, s.ID); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("at expiry: %v, want ErrNotFound", err)
	}
	if _, err := e.c.Patch(ctx, s.ID, session.PatchParams{TTL: time.Hour}); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("patch at expiry: %v, want ErrNotFound", err)
	}
	if l, err := e.c.ListByUser(ctx, "bob"); err != nil || len(l) != 0 {
		t.Fatalf("at expiry: list %v, %v", l, err)
	}
	if n, err := e.c.RevokeAll(ctx, "bob"); err != nil || n != 0 {
		t.Fatalf("revoke at expiry: %d, %v", n, err)
	}
	if err := e.c.Delete(ctx, s.ID); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("delete at expiry: %v, want ErrNotFound", err)
	}
}

// advanceToAlarm moves the clock to at: timers due by then fire, and one
// armed later for a time already past fires at once.
func (e *env) advanceToAlarm(t *testing.T, at int64) {
	t.Helper()
	e.clock.Set(time.UnixMilli(at))
}

func TestCleanupAlarmIsTheEarliestExpiry(t *testing.T) {
	for _, order := range []string{"long first", "short first"} {
		t.Run(order, func(t *testing.T) {
			e := newEnv(t)
			long := session.CreateParams{UserID: "carol", TTL: time.Hour}
			short := session.CreateParams{UserID: "carol", TTL: 10 * time.Second}
			var l, s session.Session
			if order == "long first" {
				l, s = mustCreate(t, e, long), mustCreate(t, e, short)
			} else {
				s, l = mustCreate(t, e, short), mustCreate(t, e, long)
			}
			if st := e.stats(t, "carol"); st.Rows != 2 || st.AlarmAtMS != s.ExpiresAtMS {
				t.Fatalf("stats %+v, want 2 rows and the alarm at %d", st, s.ExpiresAtMS)
			}
			e.clock.Set(time.UnixMilli(s.ExpiresAtMS - 1))
			if st := e.stats(t, "carol"); st.Rows != 2 {
				t.Fatalf("cleaned up early: %+v", st)
			}
			e.advanceToAlarm(t, s.ExpiresAtMS)
			waitFor(t, "the short session's row to go", func() bool { return e.stats(t, "carol").Rows == 1 })
			if _, err := e.c.Get(ctx, l.ID); err != nil {
				t.Fatalf("long session: %v", err)
			}
			if st := e.stats(t, "carol"); st.AlarmAtMS != l.ExpiresAtMS {
				t.Fatalf("alarm not re-armed for the long session: %+v, want %d", st, l.ExpiresAtMS)
			}
			e.advanceToAlarm(t, l.ExpiresAtMS)
			waitFor(t, "the long session's row to go", func() bool { return e.stats(t, "carol").Rows == 0 })
			if st := e.stats(t, "carol"); st.AlarmAtMS != 0 {
				t.Fatalf("alarm left with no sessions: %+v", st)
			}
		})
	}
}

func TestPatchAndDeleteMoveTheAlarm(t *testing.T) {
	e := newEnv(t)
	a := mustCreate(t, e, session.CreateParams{UserID: "dave", TTL: 10 * time.Second})
	b := mustCreate(t, e, session.CreateParams{UserID: "dave", TTL: time.Minute})
	if st := e.stats(t, "dave"); st.AlarmAtMS != a.ExpiresAtMS {
		t.Fatalf("%+v", st)
	}
	// Sliding a past b moves the alarm to b's expiry.
	a, err := e.c.Patch(ctx, a.ID, session.PatchParams{TTL: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if st := e.stats(t, "dave"); st.AlarmAtMS != b.ExpiresAtMS {
		t.Fatalf("after slide: %+v, want %d", st, b.ExpiresAtMS)
	}
	// Shortening a moves it back.
	a, err = e.c.Patch(ctx, a.ID, session.PatchParams{TTL: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if st := e.stats(t, "dave"); st.AlarmAtMS != a.ExpiresAtMS {
		t.Fatalf("after shortening: %+v, want %d", st, a.ExpiresAtMS)
	}
	if err := e.c.Delete(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if st := e.stats(t, "dave"); st.AlarmAtMS != b.ExpiresAtMS || st.Rows != 1 {
		t.Fatalf("after delete: %+v, want %d", st, b.ExpiresAtMS)
	}
	if n, err := e.c.RevokeAll(ctx, "dave"); err != nil || n != 1 {
		t.Fatalf("revoke = %d, %v", n, err)
	}
	if st := e.stats(t, "dave"); st.AlarmAtMS != 0 || st.Rows != 0 {
		t.Fatalf("after revoke: %+v", st)
	}
}

func TestListAndRevokeAcrossUsers(t *testing.T) {
	e := open(t, "", durabletest.NewClock(start), 4)
	// Two users in one shard, one in another: isolation must come from the
	// user column, not only from the sharding.
	u1 := "user-0"
	var same, other string
	for i := 1; same == "" || other == ""; i++ {
		u := fmt.Sprint("user-", i)
		if session.UserShard(u, 4) == session.UserShard(u1, 4) {
			if same == "" {
				same = u
			}
		} else if other == "" {
			other = u
		}
	}
	var ids []string
	for i := range 50 {
		ids = append(ids, mustCreate(t, e, session.CreateParams{UserID: u1, TTL: time.Duration(i+1) * time.Minute}).ID)
		e.clock.Advance(time.Millisecond)
	}
	mustCreate(t, e, session.CreateParams{UserID: same})
	mustCreate(t, e, session.CreateParams{UserID: other})

	list, err := e.c.ListByUser(ctx, u1)
	if err != nil || len(list) != 50 {
		t.Fatalf("list: %d, %v", len(list), err)
	}
	for i, in := range list {
		if in.ID != ids[i] || in.CreatedAtMS != start.UnixMilli()+int64(i) {
			t.Fatalf("list[%d] = %+v, want %s (oldest first)", i, in, ids[i])
		}
	}
	// Ten expire: they are neither listed nor counted as revoked.
	e.clock.Set(start.Add(10*time.Minute + time.Second))
	list, _ = e.c.ListByUser(ctx, u1)
	if len(list) != 40 || list[0].ID != ids[10] {
		t.Fatalf("after 10 expired: %d listed", len(list))
	}
	n, err := e.c.RevokeAll(ctx, u1)
	if err != nil || n != 40 {
		t.Fatalf("revoked %d, %v; want 40", n, err)
	}
	for _, u := range []string{same, other} {
		if l, _ := e.c.ListByUser(ctx, u); len(l) != 1 {
			t.Fatalf("user %s lost sessions: %v", u, l)
		}
	}
	if l, err := e.c.ListByUser(ctx, u1); err != nil || l == nil || len(l) != 0 {
		t.Fatalf("after revoke: %v, %v", l, err)
	}
	if _, err := e.c.Get(ctx, ids[49]); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("revoked session: %v", err)
	}
	if n, _ := e.c.RevokeAll(ctx, u1); n != 0 {
		t.Fatalf("second revoke %d", n)
	}
}

func TestSurvivesEvictionAndRestart(t *testing.T) {
	clock := durabletest.NewClock(start)
	e := open(t, "", clock, 0)
	s := mustCreate(t, e, session.CreateParams{UserID: "erin", Data: json.RawMessage(`[1]`), TTL: time.Hour})
	short := mustCreate(t, e, session.CreateParams{UserID: "erin", TTL: time.Minute})
	clock.Advance(30 * time.Second) // past the idle timeout: the janitor evicts
	waitFor(t, "eviction", func() bool { return e.rt.Stats().ActiveObjects == 0 })
	if got, err := e.c.Get(ctx, s.ID); err != nil || string(got.Data) != "[1]" {
		t.Fatalf("after eviction: %+v, %v", got, err)
	}
	e.close(t)

	// Restart after the short one expired: its alarm, due during downtime,
	// fires at start.
	clock.Advance(time.Minute)
	e = open(t, e.dir, clock, 0)
	got, err := e.c.Get(ctx, s.ID)
	if err != nil || string(got.Data) != "[1]" || got.ExpiresAtMS != s.ExpiresAtMS {
		t.Fatalf("after restart: %+v, %v", got, err)
	}
	if _, err := e.c.Get(ctx, short.ID); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("expired across restart: %v", err)
	}
	waitFor(t, "cleanup after restart", func() bool { return e.stats(t, "erin").Rows == 1 })
	if st := e.stats(t, "erin"); st.AlarmAtMS != s.ExpiresAtMS {
		t.Fatalf("%+v", st)
	}
}

func TestManyExpireAtOnce(t *testing.T) {
	// 300 rows expire at once; a cleanup run deletes at most 64, so the
	// alarm must re-arm (already due) until they are all gone.
	t.Cleanup(session.SetCleanupBatch(64))
	e := open(t, "", durabletest.NewClock(start), 1)
	const n = 300
	for i := range n {
		mustCreate(t, e, session.CreateParams{UserID: fmt.Sprint("u", i%7), TTL: time.Second})
	}
	keep := mustCreate(t, e, session.CreateParams{UserID: "keep", TTL: time.Hour})
	runs := e.rt.Stats().AlarmRuns
	e.advanceToAlarm(t, start.Add(time.Second).UnixMilli())
	waitFor(t, "cleanup", func() bool { return e.stats(t, "keep").Rows == 1 })
	if got := e.rt.Stats().AlarmRuns - runs; got < n/64+1 {
		t.Fatalf("%d alarm runs deleted %d rows in batches of 64", got, n)
	}
	if st := e.stats(t, "keep"); st.AlarmAtMS != keep.ExpiresAtMS {
		t.Fatalf("%+v", st)
	}
}

func TestValidation(t *testing.T) {
	e := newEnv(t)
	big := `"` + strings.Repeat("x", session.MaxDataSize-2) + `"`
	if _, err := e.c.Create(ctx, session.CreateParams{UserID: "u", Data: json.RawMessage(big)}); err != nil {
		t.Fatalf("data of exactly %d bytes: %v", session.MaxDataSize, err)
	}
	for name, p := range map[string]session.CreateParams{
		"no user":        {},
		"long user":      {UserID: strings.Repeat("u", session.MaxUserID+1)},
		"control char":   {UserID: "a\tb"},
		"bad utf8":       {UserID: "\xff"},
		"data too large": {UserID: "u", Data: json.RawMessage(big + " ")},
		"data not json":  {UserID: "u", Data: json.RawMessage(`{`)},
		"ttl too short":  {UserID: "u", TTL: session.MinTTL - time.Millisecond},
		"ttl too long":   {UserID: "u", TTL: session.MaxTTL + time.Millisecond},
		"negative ttl":   {UserID: "u", TTL: -time.Second},
	} {
		if _, err := e.c.Create(ctx, p); !errors.Is(err, session.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	for _, ok := range []session.CreateParams{
		{UserID: strings.Repeat("u", session.MaxUserID)},
		{UserID: "u", TTL: session.MinTTL},
		{UserID: "u", TTL: session.MaxTTL},
	} {
		if _, err := e.c.Create(ctx, ok); err != nil {
			t.Errorf("%+v: %v", ok, err)
		}
	}
	s := mustCreate(t, e, session.CreateParams{UserID: "u"})
	if _, err := e.c.Patch(ctx, s.ID, session.PatchParams{TTL: time.Millisecond}); !errors.Is(err, session.ErrInvalid) {
		t.Errorf("patch ttl: %v", err)
	}
	if _, err := e.c.ListByUser(ctx, ""); !errors.Is(err, session.ErrInvalid) {
		t.Errorf("list empty user: %v", err)
	}
	if _, err := session.Register(durable.NewRuntime(t.TempDir()), session.Options{Shards: session.MaxShards + 1}); err == nil {
		t.Error("Register accepted too many shards")
	}
}

func TestConcurrentCreates(t *testing.T) {
	e := open(t, "", nil, 8)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 25 {
				if _, err := e.c.Create(ctx, session.CreateParams{UserID: fmt.Sprint("w", w%3)}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	total := 0
	for u := range 3 {
		l, err := e.c.ListByUser(ctx, fmt.Sprint("w", u))
		if err != nil {
			t.Fatal(err)
		}
		total += len(l)
	}
	if total != 200 {
		t.Fatalf("%d sessions listed, want 200", total)
	}
}

func BenchmarkCreate(b *testing.B) {
	e := open(b, "", nil, 0)
	data := json.RawMessage(`{"role":"admin","theme":"dark"}`)
	var n atomic.Int64
	b.SetParallelism(32) // many callers, as a server has: commits group across them
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			if _, err := e.c.Create(ctx, session.CreateParams{UserID: fmt.Sprint("user", i%1000), Data: data}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkGet reads 1,000 sessions the ways a server can answer GET:
// "typed" decodes the shard's result into a Session and encodes it again
// for the response (what the gateway did before), "json" relays the
// shard's encoding (GetJSON, what it does now), and "json-uncached" is
// "json" on shards without their read cache (Options.CacheBytes < 0), the
// cache's baseline in the same process.
func BenchmarkGet(b *testing.B) {
	e := open(b, "", nil, 0)
	uncached := openWith(b, "", nil, session.Options{CacheBytes: -1})
	var ids, uncachedIDs []string
	for i := range 1000 {
		p := session.CreateParams{UserID: fmt.Sprint("user", i), Data: json.RawMessage(`{"cart":[1,2,3],"theme":"dark"}`)}
		ids = append(ids, mustCreate(b, e, p).ID)
		uncachedIDs = append(uncachedIDs, mustCreate(b, uncached, p).ID)
	}
	run := func(b *testing.B, ids []string, get func(id string) ([]byte, error)) {
		var n atomic.Int64
		b.SetParallelism(32)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				k := n.Add(1)
				if _, err := get(ids[k%int64(len(ids))]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	b.Run("typed", func(b *testing.B) {
		run(b, ids, func(id string) ([]byte, error) {
			s, err := e.c.Get(ctx, id)
			if err != nil {
				return nil, err
			}
			return json.Marshal(s)
		})
	})
	b.Run("json", func(b *testing.B) {
		run(b, ids, func(id string) ([]byte, error) { return e.c.GetJSON(ctx, id) })
	})
	b.Run("json-uncached", func(b *testing.B) {
		run(b, uncachedIDs, func(id string) ([]byte, error) { return uncached.c.GetJSON(ctx, id) })
	})
}
