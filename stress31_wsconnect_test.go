package durable_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/durableobjects/durable"
)

// Runtime.Close while clients keep connecting (upgrades in every stage)
// and sending: Close returns, every socket ends, nothing is left running.
func TestStress31CloseWhileConnecting(t *testing.T) {
	base := s31Start(t)
	for round := range 8 {
		rec := &s31WSRec{closes: map[string][]string{}}
		rt := durable.NewRuntime(t.TempDir())
		rt.MaxActive = 2
		rt.IdleTimeout = 5 * time.Millisecond
		ns, err := rt.Register("room", func(st *durable.State) any { return &s31Room{st: st, rec: rec} })
		if err != nil {
			t.Fatal(err)
		}
		if err := rt.Open(); err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		var stMu sync.Mutex
		states := map[net.Conn]http.ConnState{}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ns.GetByName(strings.TrimPrefix(r.URL.Path, "/")).ServeHTTP(w, r)
		}), ConnState: func(c net.Conn, s http.ConnState) {
			stMu.Lock()
			states[c] = s
			stMu.Unlock()
		}}
		go srv.Serve(ln)
		url := "ws://" + ln.Addr().String()
		tr := &http.Transport{}
		client := &http.Client{Transport: tr}
		var stopped atomic.Bool
		var dials, connected atomic.Int64
		var wg sync.WaitGroup
		for g := range 24 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := 0; !stopped.Load(); k++ {
					label := fmt.Sprintf("g%dk%d", g, k)
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					dials.Add(1)
					c, _, err := websocket.Dial(ctx, fmt.Sprintf("%s/room%d?label=%s", url, rand.IntN(4), label), &websocket.DialOptions{HTTPClient: client})
					if err != nil {
						cancel()
						continue
					}
					connected.Add(1)
					for i := 1; i <= 1+rand.IntN(5); i++ {
						if c.Write(ctx, websocket.MessageText, []byte(fmt.Sprintf("m %d", i))) != nil {
							break
						}
					}
					if rand.IntN(2) == 0 {
						c.Close(websocket.StatusNormalClosure, "")
					} else {
						c.CloseNow()
					}
					cancel()
				}
			}()
		}
		time.Sleep(time.Duration(100+rand.IntN(200)) * time.Millisecond)
		start := time.Now()
		if err := s31Close(t, rt, 10*time.Second); err != nil {
			t.Errorf("round %d: Close: %v", round, err)
		}
		took := time.Since(start)
		stopped.Store(true)
		wg.Wait()
		// net/http's Shutdown waits 5 s for connections that sent no
		// request yet (StateNew); they are not the runtime's.
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		if err := srv.Shutdown(ctx); err != nil {
			stMu.Lock()
			count := map[http.ConnState]int{}
			for _, s := range states {
				count[s]++
			}
			stMu.Unlock()
			// Not the runtime's: net/http keeps a connection whose
			// upgrade request was refused (503) out of the idle set.
			if count[http.StateActive] > 0 {
				t.Logf("round %d: http.Server.Shutdown: %v; server connection states %v", round, err, count)
			}
			srv.Close()
		}
		cancel()
		tr.CloseIdleConnections()
		rec.mu.Lock()
		for _, p := range rec.problems {
			t.Error(p)
		}
		for label, cs := range rec.closes {
			if len(cs) > 1 {
				t.Errorf("%s: %d close events: %q", label, len(cs), cs)
			}
		}
		rec.mu.Unlock()
		t.Logf("round %d: %d dials, %d connected; Close took %v", round, dials.Load(), connected.Load(), took)
	}
	base.check(t, "after all rounds")
}

// A burst of upgrades with Runtime.Close timed to land while their
// handshakes complete: the socket registry's Shutdown must not race the
// sockets being attached (WaitGroup Add concurrent with Wait), and no
// reader may outlive Close.
func TestStress31CloseDuringUpgradeBurst(t *testing.T) {
	base := s31Start(t)
	for round := range 30 {
		rec := &s31WSRec{closes: map[string][]string{}}
		rt := durable.NewRuntime(t.TempDir())
		_, url, srv := s31RoomServer(t, rt, rec)
		tr := &http.Transport{}
		client := &http.Client{Transport: tr}
		start := make(chan struct{})
		var wg sync.WaitGroup
		var conns []*websocket.Conn
		var mu sync.Mutex
		for g := range 48 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				c, _, err := websocket.Dial(ctx, fmt.Sprintf("%s/room%d?label=g%d", url, g%8, g), &websocket.DialOptions{HTTPClient: client})
				if err == nil {
					mu.Lock()
					conns = append(conns, c)
					mu.Unlock()
					for { // read, so the server's close handshake completes
						if _, _, err := c.Read(ctx); err != nil {
							return
						}
					}
				}
			}()
		}
		close(start)
		time.Sleep(time.Duration(rand.IntN(15000)) * time.Microsecond)
		if err := s31Close(t, rt, 10*time.Second); err != nil {
			t.Errorf("round %d: Close: %v", round, err)
		}
		wg.Wait()
		mu.Lock()
		for _, c := range conns {
			c.CloseNow()
		}
		mu.Unlock()
		srv.Close()
		tr.CloseIdleConnections()
	}
	base.check(t, "after all rounds")
}
