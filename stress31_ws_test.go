package durable_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/durableobjects/durable"
	"github.com/durableobjects/durable/durabletest"
)

type s31WSRec struct {
	mu       sync.Mutex
	problems []string
	closes   map[string][]string // label -> close events seen
}

func (r *s31WSRec) problem(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.problems) < 50 {
		r.problems = append(r.problems, fmt.Sprintf(format, args...))
	}
}

// s31Room echoes and broadcasts numbered messages, checking in storage
// that each socket's messages arrive in order, once each.
type s31Room struct {
	st  *durable.State
	rec *s31WSRec
}

func (o *s31Room) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	ws, err := o.st.AcceptWebSocket(w, req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	label := req.URL.Query().Get("label")
	ws.SetAttachment([]byte(label))
	ws.SendText("welcome " + label)
}

func (o *s31Room) WebSocketMessage(ctx context.Context, ws *durable.WebSocket, typ durable.MessageType, data []byte) error {
	label := string(ws.Attachment())
	f := strings.Fields(string(data))
	if len(f) != 2 || f[0] != "m" {
		o.rec.problem("%s: bad message %q", label, data)
		return nil
	}
	i, _ := strconv.Atoi(f[1])
	s := o.st.Storage()
	prev, _, err := durable.Get[int](s, "c/"+label)
	if err != nil {
		return err
	}
	if i != prev+1 {
		o.rec.problem("%s: message %d arrived after %d", label, i, prev)
	}
	if err := durable.Put(s, "c/"+label, i); err != nil {
		return err
	}
	for _, other := range o.st.WebSockets("") {
		if other.ID() != ws.ID() {
			other.SendText(fmt.Sprintf("b %s %d", label, i))
		}
	}
	return ws.SendText(fmt.Sprintf("e %d", i))
}

func (o *s31Room) WebSocketClose(ctx context.Context, ws *durable.WebSocket, code int, reason string, clean bool) error {
	label := string(ws.Attachment())
	o.rec.mu.Lock()
	o.rec.closes[label] = append(o.rec.closes[label], fmt.Sprintf("%d %s %v", code, reason, clean))
	o.rec.mu.Unlock()
	return nil
}

// 50 sockets over 10 objects, MaxActive 2 and an eviction pass every few
// ms, while every client sends 100 numbered messages and receives its
// echoes and its room-mates' broadcasts. Nothing is lost, doubled or
// reordered per socket; each close reaches the object once.
func TestStress31WebSocketsUnderEviction(t *testing.T) {
	base := s31Start(t)
	clock := durabletest.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	rec := &s31WSRec{closes: map[string][]string{}}
	rt := durable.NewRuntime(t.TempDir())
	rt.Clock = clock
	rt.MaxActive = 2
	rt.IdleTimeout = 10 * time.Millisecond
	_, url, srv := s31RoomServer(t, rt, rec)

	stopEvict := s31Evict(rt, clock)

	const rooms, perRoom, msgs = 10, 5, 100
	type client struct {
		label, room string
		idx         int
		c           *websocket.Conn
	}
	var clients []*client
	for r := range rooms {
		for k := range perRoom {
			cl := &client{label: fmt.Sprintf("r%dk%d", r, k), room: fmt.Sprintf("room%d", r), idx: len(clients)}
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
	for _, cl := range clients {
		wg.Add(2)
		go func() { // writer
			defer wg.Done()
			for i := 1; i <= msgs; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
				err := cl.c.Write(ctx, websocket.MessageText, []byte(fmt.Sprintf("m %d", i)))
				cancel()
				if err != nil {
					t.Errorf("%s: write %d: %v", cl.label, i, err)
					return
				}
				if i%10 == 0 { // pauses: the rooms go idle and are evicted
					time.Sleep(time.Duration(i%30) * time.Millisecond)
				}
			}
		}()
		go func() { // reader
			defer wg.Done()
			echo := 0
			peers := map[string]int{}
			want := func() bool {
				if echo < msgs || len(peers) < perRoom-1 {
					return true
				}
				for _, n := range peers {
					if n < msgs {
						return true
					}
				}
				return false
			}
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			for want() {
				_, b, err := cl.c.Read(ctx)
				if err != nil {
					t.Errorf("%s: read after echo %d, peers %v: %v", cl.label, echo, peers, err)
					return
				}
				f := strings.Fields(string(b))
				switch {
				case len(f) == 2 && f[0] == "e":
					i, _ := strconv.Atoi(f[1])
					if i != echo+1 {
						t.Errorf("%s: echo %d after %d", cl.label, i, echo)
					}
					echo = i
				case len(f) == 3 && f[0] == "b":
					i, _ := strconv.Atoi(f[2])
					if i != peers[f[1]]+1 {
						t.Errorf("%s: broadcast %s %d after %d", cl.label, f[1], i, peers[f[1]])
					}
					peers[f[1]] = i
				default:
					t.Errorf("%s: unexpected %q", cl.label, b)
				}
			}
		}()
	}
	wg.Wait()

	// Each client closes with its own code; the object hears each once.
	for _, cl := range clients {
		go cl.c.Close(websocket.StatusCode(4000+cl.idx), cl.label)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		rec.mu.Lock()
		n := len(rec.closes)
		rec.mu.Unlock()
		if n == len(clients) || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // room for a duplicate to show
	stopEvict()
	rec.mu.Lock()
	for _, cl := range clients {
		got := rec.closes[cl.label]
		want := fmt.Sprintf("%d %s true", 4000+cl.idx, cl.label)
		if len(got) != 1 || got[0] != want {
			t.Errorf("%s: close events %q, want [%q]", cl.label, got, want)
		}
	}
	for _, p := range rec.problems {
		t.Error(p)
	}
	rec.mu.Unlock()
	st := rt.Stats()
	t.Logf("events %d, activations %d, evictions %d", st.Events, st.Activations, st.Evictions)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv.Shutdown(ctx)
	if err := s31Close(t, rt, 20*time.Second); err != nil {
		t.Fatalf("Close: %v", err)
	}
	base.check(t, "after Close")
}
