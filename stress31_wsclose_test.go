package durable_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/durableobjects/durable"
	"github.com/durableobjects/durable/durabletest"
)

type s31Label struct{ Label string }

func (o *s31Room) Count(ctx context.Context, p s31Label) (int, error) {
	n, _, err := durable.Get[int](o.st.Storage(), "c/"+p.Label)
	return n, err
}

// Sockets that vanish (no close frame) while their objects are evicted,
// then Runtime.Close while the rest still send: each vanished socket's
// close reaches its object once; the others get 1001 after every echo the
// runtime acknowledged; Close returns and leaves nothing running; after a
// restart each socket's count is at least its last echo.
func TestStress31WebSocketsAbruptAndClose(t *testing.T) {
	base := s31Start(t)
	dir := t.TempDir()
	clock := durabletest.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	rec := &s31WSRec{closes: map[string][]string{}}
	rt := durable.NewRuntime(dir)
	rt.Clock = clock
	rt.MaxActive = 2
	rt.IdleTimeout = 10 * time.Millisecond
	_, url, srv := s31RoomServer(t, rt, rec)
	stopEvict := s31Evict(rt, clock)

	const rooms, perRoom = 8, 5
	type client struct {
		label, room string
		abrupt      bool
		c           *websocket.Conn
		lastEcho    atomic.Int64
		closeStatus atomic.Int64
	}
	var clients []*client
	for r := range rooms {
		for k := range perRoom {
			cl := &client{label: fmt.Sprintf("r%dk%d", r, k), room: fmt.Sprintf("room%d", r), abrupt: k < 2}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			c, _, err := websocket.Dial(ctx, url+"/"+cl.room+"?label="+cl.label, nil)
			if err != nil {
				cancel()
				t.Fatal(err)
			}
			_, b, err := c.Read(ctx)
			cancel()
			if err != nil || string(b) != "welcome "+cl.label {
				t.Fatalf("%s: welcome %q %v", cl.label, b, err)
			}
			cl.c = c
			clients = append(clients, cl)
		}
	}
	var wg sync.WaitGroup
	abruptAt := time.Now().Add(300 * time.Millisecond)
	for _, cl := range clients {
		wg.Add(2)
		go func() { // writer: until the abrupt end, or the connection fails
			defer wg.Done()
			for i := 1; ; i++ {
				if cl.abrupt && time.Now().After(abruptAt) {
					cl.c.CloseNow()
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				err := cl.c.Write(ctx, websocket.MessageText, []byte(fmt.Sprintf("m %d", i)))
				cancel()
				if err != nil {
					return
				}
				time.Sleep(time.Duration(i%3) * time.Millisecond)
			}
		}()
		go func() { // reader: echoes in order until the close
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			for {
				_, b, err := cl.c.Read(ctx)
				if err != nil {
					cl.closeStatus.Store(int64(websocket.CloseStatus(err)))
					if !cl.abrupt && websocket.CloseStatus(err) == -1 {
						t.Errorf("%s: read ended without a close frame: %v", cl.label, err)
					}
					return
				}
				f := strings.Fields(string(b))
				if len(f) == 2 && f[0] == "e" {
					i, _ := strconv.Atoi(f[1])
					if int64(i) != cl.lastEcho.Load()+1 {
						t.Errorf("%s: echo %d after %d", cl.label, i, cl.lastEcho.Load())
					}
					cl.lastEcho.Store(int64(i))
				}
			}
		}()
	}
	// The abrupt ones are gone and their closes delivered.
	time.Sleep(time.Until(abruptAt) + 300*time.Millisecond)
	waitFor(t, "close events of the vanished sockets", func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return len(rec.closes) >= rooms*2
	})
	// Close while the others still send.
	closeStart := time.Now()
	if err := s31Close(t, rt, 15*time.Second); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close: %v", err)
	}
	t.Logf("Close took %v", time.Since(closeStart))
	stopEvict()
	wg.Wait()
	rec.mu.Lock()
	for _, cl := range clients {
		got := rec.closes[cl.label]
		switch {
		case cl.abrupt && (len(got) != 1 || got[0] != "1006  false"):
			t.Errorf("%s (vanished): close events %q, want one \"1006  false\"", cl.label, got)
		case !cl.abrupt && len(got) > 1:
			t.Errorf("%s: close events %q", cl.label, got)
		}
		if !cl.abrupt && cl.closeStatus.Load() != int64(websocket.StatusGoingAway) {
			t.Errorf("%s: client saw close status %d, want 1001", cl.label, cl.closeStatus.Load())
		}
	}
	for _, p := range rec.problems {
		t.Error(p)
	}
	rec.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	srv.Shutdown(ctx)
	cancel()

	rt2 := durable.NewRuntime(dir)
	ns2, _ := rt2.Register("room", func(st *durable.State) any { return &s31Room{st: st, rec: rec} })
	if err := rt2.Open(); err != nil {
		t.Fatal(err)
	}
	for _, cl := range clients {
		n, err := durable.Call[int](context.Background(), ns2.GetByName(cl.room), "Count", s31Label{cl.label})
		if err != nil || int64(n) < cl.lastEcho.Load() {
			t.Errorf("%s: stored count %d, %v; last echo received %d", cl.label, n, err, cl.lastEcho.Load())
		}
	}
	if err := s31Close(t, rt2, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	base.check(t, "after Close")
}
