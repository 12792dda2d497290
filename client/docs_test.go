package client_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/durableobjects/durable/client"
)

func TestDocs(t *testing.T) {
	s := newServer(t)
	c := newClient(t, s)
	ctx := testCtx(t)

	d, err := c.GetDoc(ctx, "notes/1")
	if err != nil || d.Content != "" || d.Version != 0 {
		t.Fatalf("new doc: %+v, %v", d, err)
	}
	v, err := c.PutDoc(ctx, "notes/1", "hello")
	if err != nil || v != 1 {
		t.Fatalf("put: %d, %v", v, err)
	}
	if _, err := c.PutDocIf(ctx, "notes/1", "stale", 0); !errors.Is(err, client.ErrConflict) || !client.IsConflict(err) {
		t.Fatalf("stale put: %v", err)
	}
	v, err = c.PutDocIf(ctx, "notes/1", "hello world", 1)
	if err != nil || v != 2 {
		t.Fatalf("put at version 1: %d, %v", v, err)
	}
	if d, err := c.GetDoc(ctx, "notes/1"); err != nil || d.Content != "hello world" || d.Version != 2 {
		t.Fatalf("get: %+v, %v", d, err)
	}
	if _, err := c.PutDoc(ctx, "notes/1", strings.Repeat("x", 1<<20+1)); !errors.Is(err, client.ErrInvalidArgument) {
		t.Fatalf("content over 1 MiB: %v", err)
	}

	a, err := c.DialDoc(ctx, "notes/1")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := c.DialDoc(ctx, "notes/1")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if a.Init != (client.DocMessage{Type: client.MsgInit, Content: "hello world", Version: 2}) {
		t.Fatalf("init: %+v", a.Init)
	}
	read := func(conn *client.DocConn, want client.DocMessage) {
		t.Helper()
		m, err := conn.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if want.Type == client.MsgError {
			if m.Type != client.MsgError || m.Message == "" {
				t.Fatalf("got %+v, want an error message", m)
			}
			return
		}
		if m != want {
			t.Fatalf("got %+v, want %+v", m, want)
		}
	}
	if err := a.EditIf(ctx, "from a", 2); err != nil {
		t.Fatal(err)
	}
	read(a, client.DocMessage{Type: client.MsgAck, Version: 3})
	read(b, client.DocMessage{Type: client.MsgEdit, Content: "from a", Version: 3})
	if err := b.EditIf(ctx, "from b, stale", 2); err != nil {
		t.Fatal(err)
	}
	read(b, client.DocMessage{Type: client.MsgConflict, Content: "from a", Version: 3})
	if err := b.Edit(ctx, "from b"); err != nil {
		t.Fatal(err)
	}
	read(b, client.DocMessage{Type: client.MsgAck, Version: 4})
	read(a, client.DocMessage{Type: client.MsgEdit, Content: "from b", Version: 4})
	// An HTTP PUT reaches the sockets.
	if _, err := c.PutDoc(ctx, "notes/1", "from http"); err != nil {
		t.Fatal(err)
	}
	read(a, client.DocMessage{Type: client.MsgEdit, Content: "from http", Version: 5})
	read(b, client.DocMessage{Type: client.MsgEdit, Content: "from http", Version: 5})
	// Content over 1 MiB (the read limit lets the escaped echo through):
	// an error message, and the socket stays open.
	if err := a.Edit(ctx, strings.Repeat("x", 1<<20+1)); err != nil {
		t.Fatal(err)
	}
	read(a, client.DocMessage{Type: client.MsgError})
	big := strings.Repeat("\x01", 1<<20) // 6 bytes per byte in JSON
	if err := a.Edit(ctx, big); err != nil {
		t.Fatal(err)
	}
	read(a, client.DocMessage{Type: client.MsgAck, Version: 6})
	read(b, client.DocMessage{Type: client.MsgEdit, Content: big, Version: 6})
}
