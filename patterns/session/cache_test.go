package session_test

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/durableobjects/durable"
	"github.com/durableobjects/durable/durabletest"
	"github.com/durableobjects/durable/internal/fullfs"
	"github.com/durableobjects/durable/patterns/session"
)

// A shard remembers the sessions it reads and writes (readCache). Every
// write in this test follows a Get that put the session in that memory, so
// a write that left a stale entry behind shows in the Get after it.
func TestReadsAfterEveryWriteSeeTheWrite(t *testing.T) {
	e := open(t, "", durabletest.NewClock(start), 1) // one shard: every session shares one cache
	mustGet := func(id, wantData string, wantExp int64) {
		t.Helper()
		got, err := e.c.Get(ctx, id)
		if err != nil || string(got.Data) != wantData || got.ExpiresAtMS != wantExp {
			t.Fatalf("Get(%s) = %+v, %v; want data %s, expiry %d", id, got, err, wantData, wantExp)
		}
	}
	mustBeGone := func(id, after string) {
		t.Helper()
		if _, err := e.c.Get(ctx, id); !errors.Is(err, session.ErrNotFound) {
			t.Fatalf("Get after %s: %v, want ErrNotFound", after, err)
		}
	}

	a := mustCreate(t, e, session.CreateParams{UserID: "alice", Data: json.RawMessage(`1`), TTL: time.Hour})
	mustGet(a.ID, `1`, a.ExpiresAtMS)
	if _, err := e.c.Patch(ctx, a.ID, session.PatchParams{Data: json.RawMessage(`2`)}); err != nil {
		t.Fatal(err)
	}
	mustGet(a.ID, `2`, a.ExpiresAtMS)
	e.clock.Advance(time.Minute)
	if _, err := e.c.Patch(ctx, a.ID, session.PatchParams{TTL: 2 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	exp := start.Add(time.Minute + 2*time.Hour).UnixMilli()
	mustGet(a.ID, `2`, exp)

	// Expiry, whether or not the alarm has deleted the row yet.
	e.clock.Set(time.UnixMilli(exp))
	mustBeGone(a.ID, "expiry")
	if _, err := e.c.Patch(ctx, a.ID, session.PatchParams{Data: json.RawMessage(`3`)}); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("Patch after expiry: %v, want ErrNotFound", err)
	}

	b := mustCreate(t, e, session.CreateParams{UserID: "bob", TTL: time.Hour})
	b2 := mustCreate(t, e, session.CreateParams{UserID: "bob", TTL: time.Hour})
	c := mustCreate(t, e, session.CreateParams{UserID: "carol", TTL: time.Hour})
	for _, s := range []session.Session{b, b2, c} {
		mustGet(s.ID, `null`, s.ExpiresAtMS)
	}
	if n, err := e.c.RevokeAll(ctx, "bob"); err != nil || n != 2 {
		t.Fatalf("RevokeAll = %d, %v; want 2", n, err)
	}
	mustBeGone(b.ID, "revoke")
	mustBeGone(b2.ID, "revoke")
	mustGet(c.ID, `null`, c.ExpiresAtMS)

	if err := e.c.Delete(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	mustBeGone(c.ID, "delete")
}

// The read cache is memory only: a new activation reads the table again.
// Eviction and restart drop the shard's instance; after either, Get
// answers what was stored.
func TestReadCacheStartsEmptyAfterRestart(t *testing.T) {
	dir := t.TempDir()
	clock := durabletest.NewClock(start)
	e := open(t, dir, clock, 1)
	s := mustCreate(t, e, session.CreateParams{UserID: "alice", Data: json.RawMessage(`"v1"`)})
	if _, err := e.c.Patch(ctx, s.ID, session.PatchParams{Data: json.RawMessage(`"v2"`)}); err != nil {
		t.Fatal(err)
	}
	e.close(t)
	e = open(t, dir, clock, 1)
	got, err := e.c.Get(ctx, s.ID)
	if err != nil || string(got.Data) != `"v2"` {
		t.Fatalf("Get after restart = %+v, %v; want v2", got, err)
	}
}

// A Patch whose commit fails (the disk is full when the WAL must grow)
// has been applied to the shard's memory by then. The runtime drops the
// instance, cache and all, so the next Get answers the stored session,
// not the patch that never committed.
func TestPatchWhoseCommitFailsIsNotRead(t *testing.T) {
	mnt := fullfs.Mount(t, "4m")
	e := open(t, mnt, durabletest.NewClock(start), 1)
	s := mustCreate(t, e, session.CreateParams{UserID: "alice", Data: json.RawMessage(`"stored"`)})
	if got, err := e.c.Get(ctx, s.ID); err != nil || string(got.Data) != `"stored"` {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	big := json.RawMessage(`"` + strings.Repeat("x", session.MaxDataSize-2) + `"`)
	filler := fullfs.Fill(t, mnt)
	_, err := e.c.Patch(ctx, s.ID, session.PatchParams{Data: big})
	filler.Close()
	if rerr := os.Remove(filler.Name()); rerr != nil {
		t.Fatal(rerr)
	}
	var pe *durable.PanicError
	if !errors.Is(err, durable.ErrReset) || errors.As(err, &pe) {
		t.Fatalf("Patch on a full disk: %v; the test needs its commit to fail (durable.ErrReset)", err)
	}
	got, err := e.c.Get(ctx, s.ID)
	if err != nil || string(got.Data) != `"stored"` {
		t.Fatalf("Get after the failed Patch = %.40s…, %v; want the stored data", got.Data, err)
	}
}
