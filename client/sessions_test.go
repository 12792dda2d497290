package client_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/durableobjects/durable/client"
)

func TestSessions(t *testing.T) {
	s := newServer(t)
	c := newClient(t, s)
	ctx := testCtx(t)

	before := time.Now()
	created, err := c.CreateSession(ctx, client.CreateSessionRequest{UserID: "u/1", Data: map[string]any{"cart": []int{1, 2}}, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if len(created.ID) < 22 || created.UserID != "u/1" ||
		created.ExpiresAt.Before(before.Add(time.Hour).Add(-time.Second)) || created.ExpiresAt.After(time.Now().Add(time.Hour)) {
		t.Fatalf("created: %+v", created)
	}
	got, err := c.GetSession(ctx, created.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != created.ID || got.UserID != "u/1" || string(got.Data) != `{"cart":[1,2]}` ||
		!got.ExpiresAt.Equal(created.ExpiresAt) || got.CreatedAt.After(got.ExpiresAt) || got.CreatedAt.Before(before.Add(-time.Second)) {
		t.Fatalf("get: %+v (%s)", got, got.Data)
	}

	// Defaults: data null, TTL 24 h.
	other, err := c.CreateSession(ctx, client.CreateSessionRequest{UserID: "u/1"})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(other.ExpiresAt); d < 23*time.Hour || d > 24*time.Hour {
		t.Fatalf("default TTL: expires in %v", d)
	}
	if got, err := c.GetSession(ctx, other.ID); err != nil || string(got.Data) != "null" {
		t.Fatalf("default data: %+v, %v", got, err)
	}

	// PATCH: data replaces, TTL slides, absent data stays, null sets null.
	p, err := c.PatchSession(ctx, created.ID, client.SessionPatch{Data: json.RawMessage(`"x"`)})
	if err != nil || string(p.Data) != `"x"` || !p.ExpiresAt.Equal(created.ExpiresAt) {
		t.Fatalf("patch data: %+v, %v", p, err)
	}
	p, err = c.PatchSession(ctx, created.ID, client.SessionPatch{TTL: 2 * time.Hour})
	if err != nil || string(p.Data) != `"x"` || !p.ExpiresAt.After(created.ExpiresAt) {
		t.Fatalf("patch TTL: %+v, %v", p, err)
	}
	p, err = c.PatchSession(ctx, created.ID, client.SessionPatch{Data: json.RawMessage("null")})
	if err != nil || string(p.Data) != "null" {
		t.Fatalf("patch null: %+v, %v", p, err)
	}
	p, err = c.PatchSession(ctx, created.ID, client.SessionPatch{})
	if err != nil || string(p.Data) != "null" {
		t.Fatalf("empty patch: %+v, %v", p, err)
	}

	list, err := c.ListUserSessions(ctx, "u/1")
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{}
	for _, s := range list {
		ids = append(ids, s.ID)
		if s.CreatedAt.IsZero() || !s.ExpiresAt.After(s.CreatedAt) {
			t.Fatalf("listed: %+v", s)
		}
	}
	if want := []string{created.ID, other.ID}; !sameSet(ids, want) {
		t.Fatalf("listed %v, want %v", ids, want)
	}

	if err := c.DeleteSession(ctx, other.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetSession(ctx, other.ID); !client.IsNotFound(err) {
		t.Fatalf("get after delete: %v", err)
	}
	if err := c.DeleteSession(ctx, other.ID); !client.IsNotFound(err) || errors.Is(err, client.ErrUnknownOutcome) {
		t.Fatalf("delete twice: %v", err)
	}
	if _, err := c.PatchSession(ctx, other.ID, client.SessionPatch{TTL: time.Hour}); !client.IsNotFound(err) {
		t.Fatalf("patch after delete: %v", err)
	}

	for range 3 {
		if _, err := c.CreateSession(ctx, client.CreateSessionRequest{UserID: "u/1"}); err != nil {
			t.Fatal(err)
		}
	}
	n, err := c.RevokeUserSessions(ctx, "u/1")
	if err != nil || n != 4 {
		t.Fatalf("revoked %d, %v; want 4", n, err)
	}
	if list, err := c.ListUserSessions(ctx, "u/1"); err != nil || len(list) != 0 {
		t.Fatalf("after revoke: %v, %v", list, err)
	}
	if n, err := c.RevokeUserSessions(ctx, "nobody"); err != nil || n != 0 {
		t.Fatalf("revoke none: %d, %v", n, err)
	}

	// Limits.
	for name, req := range map[string]client.CreateSessionRequest{
		"no user":      {},
		"short TTL":    {UserID: "u", TTL: time.Millisecond},
		"data over 64": {UserID: "u", Data: strings.Repeat("x", 65<<10)},
	} {
		if _, err := c.CreateSession(ctx, req); !errors.Is(err, client.ErrInvalidArgument) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := c.CreateSession(ctx, client.CreateSessionRequest{UserID: "u", Data: strings.Repeat("x", 2<<20)}); !errors.Is(err, client.ErrPayloadTooLarge) {
		t.Errorf("body over 1 MiB: %v", err)
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
