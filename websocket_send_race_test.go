package durable_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/durableobjects/durable"
)

const (
	sendRaceSenders   = 8   // goroutines the "go" handler starts
	sendRacePerSender = 50  // messages each of them sends
	sendRaceEvents    = 400 // client messages sent meanwhile, each an event
)

// sendRaceObj accepts WebSockets. Its "go" handler starts goroutines that
// Send from outside any event of theirs; its other messages are events that
// write storage and reply, so the goroutines send while events hold the
// gate, while they are being released, and while none does.
type sendRaceObj struct {
	st      *durable.State
	senders *sync.WaitGroup
	stop    chan struct{} // closed when the test ends
	errs    chan error    // what the senders' Sends returned, if not nil
	start   chan struct{} // closed by the first "m" event: the senders begin
	started bool
}

func (o *sendRaceObj) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if _, err := o.st.AcceptWebSocket(w, req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
	}
}

func (o *sendRaceObj) WebSocketMessage(ctx context.Context, ws *durable.WebSocket, typ durable.MessageType, data []byte) error {
	msg := string(data)
	if msg == "go" {
		for g := range sendRaceSenders {
			o.senders.Go(func() {
				select {
				case <-o.start:
				case <-o.stop:
					return
				}
				for k := range sendRacePerSender {
					if err := ws.SendText(fmt.Sprintf("g %d %d", g, k)); err != nil {
						o.errs <- fmt.Errorf("sender %d, message %d: %w", g, k, err)
						return
					}
				}
			})
		}
		return ws.SendText("going")
	}
	s := o.st.Storage()
	n, _, err := durable.Get[int](s, "count")
	if err != nil {
		return err
	}
	if err := durable.Put(s, "count", n+1); err != nil {
		return err
	}
	if !o.started {
		o.started = true
		close(o.start)
	}
	return ws.SendText(fmt.Sprintf("r %s %d", msg, n+1))
}

// Sends from goroutines a handler started race with the events of the
// object (they hold its gate, and are released, meanwhile). Every message
// must arrive exactly once, each goroutine's in the order it sent them, and
// the replies of the events in event order with the storage they saw.
func TestWebSocketSendFromGoroutines(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	senders := new(sync.WaitGroup)
	stop := make(chan struct{})
	errs := make(chan error, sendRaceSenders)
	rt := durable.NewRuntime(t.TempDir())
	ns, err := rt.Register("sendrace", func(st *durable.State) any {
		return &sendRaceObj{st: st, senders: senders, stop: stop, errs: errs, start: make(chan struct{})}
	})
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
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ns.GetByName(strings.TrimPrefix(r.URL.Path, "/")).ServeHTTP(w, r)
	})}
	go srv.Serve(ln)
	var conn *websocket.Conn
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		close(stop)
		if conn != nil {
			conn.CloseNow()
		}
		srv.Shutdown(ctx)
		rt.Close(ctx)
		senders.Wait() // each sends at most 50 more messages, or returns
	})

	conn, _, err = websocket.Dial(ctx, "ws://"+ln.Addr().String()+"/obj", nil)
	if err != nil {
		t.Fatal(err)
	}
	write := func(ctx context.Context, s string) error {
		return conn.Write(ctx, websocket.MessageText, []byte(s))
	}
	read := func() string {
		t.Helper()
		_, b, err := conn.Read(ctx)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		return string(b)
	}

	// "go" is answered before any sender may begin (they wait for the
	// first "m" event).
	if err := write(ctx, "go"); err != nil {
		t.Fatal(err)
	}
	if got := read(); got != "going" {
		t.Fatalf("first message %q, want going", got)
	}

	// The events go in from another goroutine while this one reads, so
	// nothing waits on a client that is not reading.
	writeErr := make(chan error, 1)
	go func() {
		for i := range sendRaceEvents {
			if err := write(ctx, "m"+strconv.Itoa(i)); err != nil {
				writeErr <- err
				return
			}
		}
		writeErr <- nil
	}()

	// What each sender's messages were, in arrival order; checked once all
	// have arrived, so a failure tells reordering from loss.
	seq := make([][]int, sendRaceSenders)
	replies := 0
	for range sendRaceSenders*sendRacePerSender + sendRaceEvents {
		got := read()
		f := strings.Fields(got)
		switch {
		case len(f) == 3 && f[0] == "g":
			g, err1 := strconv.Atoi(f[1])
			k, err2 := strconv.Atoi(f[2])
			if err1 != nil || err2 != nil || g < 0 || g >= sendRaceSenders {
				t.Fatalf("unexpected message %q", got)
			}
			seq[g] = append(seq[g], k)
		case len(f) == 3 && f[0] == "r":
			want := fmt.Sprintf("r m%d %d", replies, replies+1)
			if got != want {
				t.Fatalf("reply %q, want %q", got, want)
			}
			replies++
		default:
			t.Fatalf("unexpected message %q", got)
		}
	}
	if err := <-writeErr; err != nil {
		t.Fatalf("write: %v", err)
	}
	if replies != sendRaceEvents {
		t.Errorf("%d replies, want %d", replies, sendRaceEvents)
	}
	for g, ks := range seq {
		seen := make([]int, sendRacePerSender)
		for _, k := range ks {
			if k >= 0 && k < sendRacePerSender {
				seen[k]++
			}
		}
		for k, n := range seen {
			if n != 1 {
				t.Errorf("sender %d: message %d arrived %d times", g, k, n)
			}
		}
		for i, k := range ks {
			if k != i {
				t.Errorf("sender %d: message %d arrived where %d was due; arrival order %v", g, k, i, ks)
				break
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// Every sender has returned; one more event must be answered next:
	// nothing of theirs is left to arrive late (duplicated).
	done := make(chan struct{})
	go func() { senders.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("senders did not return")
	}
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	if err := write(ctx, "last"); err != nil {
		t.Fatal(err)
	}
	if got, want := read(), fmt.Sprintf("r last %d", sendRaceEvents+1); got != want {
		t.Fatalf("after everything: %q, want %q", got, want)
	}
	if err := conn.Close(websocket.StatusNormalClosure, ""); err != nil && !errors.Is(err, net.ErrClosed) {
		t.Logf("close: %v", err)
	}
}
