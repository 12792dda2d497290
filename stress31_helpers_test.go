package durable_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/durableobjects/durable"
	"github.com/durableobjects/durable/durabletest"
)

// s31FDs counts the process's open file descriptors.
func s31FDs(t *testing.T) int {
	t.Helper()
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(es)
}

// s31FDList lists what the process's descriptors point at.
func s31FDList() []string {
	es, _ := os.ReadDir("/proc/self/fd")
	var out []string
	for _, e := range es {
		l, _ := os.Readlink("/proc/self/fd/" + e.Name())
		out = append(out, e.Name()+" -> "+l)
	}
	return out
}

// s31Baseline records goroutines and fds before a test's runtime opens.
type s31Baseline struct {
	goroutines int
	fds        int
}

func s31Start(t *testing.T) s31Baseline {
	t.Helper()
	runtime.GC()
	return s31Baseline{goroutines: runtime.NumGoroutine(), fds: s31FDs(t)}
}

// check waits up to 5 s for goroutines and fds to come back near the
// baseline, and fails the test with the leftovers otherwise.
func (b s31Baseline) check(t *testing.T, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	var g, f int
	for {
		g, f = runtime.NumGoroutine(), s31FDs(t)
		if g <= b.goroutines+3 && f <= b.fds+2 {
			return
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if g > b.goroutines+3 {
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		t.Errorf("%s: %d goroutines, %d before\n%s", what, g, b.goroutines, s31Summarize(string(buf[:n])))
	}
	if f > b.fds+2 {
		t.Errorf("%s: %d open fds, %d before:\n%s", what, f, b.fds, strings.Join(s31FDList(), "\n"))
	}
}

// s31Summarize groups goroutine dumps by their top frames.
func s31Summarize(dump string) string {
	counts := map[string]int{}
	for _, g := range strings.Split(dump, "\n\n") {
		lines := strings.Split(g, "\n")
		var key []string
		for _, l := range lines[1:] {
			if strings.HasPrefix(l, "\t") {
				continue
			}
			key = append(key, l)
			if len(key) == 4 {
				break
			}
		}
		counts[strings.Join(key, " | ")]++
	}
	var keys []string
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var sb strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&sb, "%4d  %s\n", counts[k], k)
	}
	return sb.String()
}

// s31Close closes rt within d, failing the test if it does not return.
func s31Close(t *testing.T, rt *durable.Runtime, d time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- rt.Close(ctx) }()
	select {
	case err := <-done:
		return err
	case <-time.After(d + 5*time.Second):
		buf := make([]byte, 4<<20)
		n := runtime.Stack(buf, true)
		t.Fatalf("Close did not return within %v (+5 s) though its context ended\n%s", d, buf[:n])
		return nil
	}
}

// s31RoomServer registers s31Room on rt, opens rt and serves its objects
// over HTTP on loopback: the namespace, the ws:// URL and the server.
func s31RoomServer(t *testing.T, rt *durable.Runtime, rec *s31WSRec) (*durable.Namespace, string, *http.Server) {
	t.Helper()
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
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ns.GetByName(strings.TrimPrefix(r.URL.Path, "/")).ServeHTTP(w, r)
	})}
	go srv.Serve(ln)
	return ns, "ws://" + ln.Addr().String(), srv
}

// s31Evict moves clock on and evicts rt's idle objects every 2 ms until
// the returned stop is called (which waits for it).
func s31Evict(rt *durable.Runtime, clock *durabletest.Clock) (stop func()) {
	stopc, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stopc:
				return
			case <-time.After(2 * time.Millisecond):
				clock.Advance(20 * time.Millisecond)
				durable.EvictIdle(rt)
			}
		}
	}()
	return func() { close(stopc); <-done }
}
