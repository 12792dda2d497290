package collab

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// raiseFileLimit lifts the soft limit on open files to the hard one.
func raiseFileLimit(tb testing.TB, need uint64) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		tb.Fatal(err)
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		tb.Fatal(err)
	}
	if lim.Cur < need {
		tb.Skipf("open-file limit %d, need %d", lim.Cur, need)
	}
}

// BenchmarkBroadcastFanout measures how many edit messages per second one
// document delivers to its clients: 1,000 clients over loopback, one of
// which sends edits (keeping at most 128 not yet delivered to everyone)
// while the other 999 read. Every edit is stored (a commit and a
// durability barrier round) and then sent to 999 sockets.
//
// The baseline, measured alongside, is the same load on a hand-written
// hub: the same WebSocket library, one writer goroutine per client fed by
// a channel, nothing stored. Its figure is what this machine's loopback
// and the library allow at that moment; the ratio of the two is the cost
// of the runtime (storage, output gate, hibernating registry).
func BenchmarkBroadcastFanout(b *testing.B) {
	for _, size := range []int{64, 4 << 10} {
		b.Run(fmt.Sprintf("clients=1000/content=%dB/server=durable", size), func(b *testing.B) {
			h := newHarness(b, nil)
			benchFanout(b, 1000, size, func() *websocket.Conn { return h.dial(b, "fanout") }, func() {
				st := h.rt.Stats()
				// Edits per commit and the barrier's latency explain much of the figure.
				b.Logf("%d commits; %d sync rounds of %v on average", st.Commits, st.SyncRounds,
					st.SyncLatencySum/time.Duration(max(st.SyncRounds, 1)))
			})
		})
		b.Run(fmt.Sprintf("clients=1000/content=%dB/server=baseline-hub", size), func(b *testing.B) {
			url := startHub(b)
			benchFanout(b, 1000, size, func() *websocket.Conn { return dialURL(b, url) }, func() {})
		})
	}
}

// startHub serves the baseline: a broadcast hub with no storage.
func startHub(tb testing.TB) string {
	type client struct {
		conn *websocket.Conn
		out  chan []byte
	}
	var mu sync.Mutex
	var clients []*client
	var version int64
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var wg sync.WaitGroup
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		conn.SetReadLimit(16 << 20)
		c := &client{conn: conn, out: make(chan []byte, 1024)}
		c.out <- []byte(`{"type":"init","content":"","version":0}`)
		mu.Lock()
		clients = append(clients, c)
		mu.Unlock()
		wg.Go(func() {
			for m := range c.out {
				if err := conn.Write(context.Background(), websocket.MessageText, m); err != nil {
					return
				}
			}
		})
		for {
			_, data, err := conn.Read(context.Background())
			if err != nil {
				close(c.out)
				return
			}
			m, err := parseMessage(data)
			if err != nil {
				continue
			}
			mu.Lock()
			version++
			c.out <- encode(ackMsg{Type: "ack", Version: version})
			msg := encode(initMsg{Type: "edit", Content: m.Content, Version: version})
			for _, o := range clients {
				if o != c {
					o.out <- msg
				}
			}
			mu.Unlock()
		}
	})}
	go srv.Serve(ln)
	tb.Cleanup(func() {
		mu.Lock()
		for _, c := range clients {
			c.conn.CloseNow()
		}
		mu.Unlock()
		srv.Close()
		wg.Wait()
	})
	return "ws://" + ln.Addr().String()
}

func dialURL(tb testing.TB, url string) *websocket.Conn {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		tb.Fatal(err)
	}
	c.SetReadLimit(16 << 20)
	tb.Cleanup(func() { c.CloseNow() })
	return c
}

func benchFanout(b *testing.B, clients, size int, dial func() *websocket.Conn, report func()) {
	raiseFileLimit(b, uint64(2*clients+100))
	conns := make([]*websocket.Conn, clients)
	for i := range conns {
		conns[i] = dial()
		read(b, conns[i])
	}
	sender, readers := conns[0], conns[1:]

	// delivered[v] counts the readers that got version v; done[v] closes
	// when all have.
	const window = 128
	var mu sync.Mutex
	delivered := map[int64]int{}
	done := map[int64]chan struct{}{}
	doneCh := func(v int64) chan struct{} {
		mu.Lock()
		defer mu.Unlock()
		ch, ok := done[v]
		if !ok {
			ch = make(chan struct{})
			done[v] = ch
		}
		return ch
	}
	var total atomic.Int64
	var ended atomic.Int64 // readers whose connection ended early
	var firstErr atomic.Value
	wait := func(v int64) {
		select {
		case <-doneCh(v):
		case <-time.After(time.Minute):
			b.Fatalf("edit %d not delivered to every client within a minute; %d clients disconnected (%v)",
				v, ended.Load(), firstErr.Load())
		}
	}
	// Reads use no cancelable context: 999 readers registering on one
	// would contend on its lock. Closing the connections ends them.
	ctx := context.Background()
	var stopping atomic.Bool
	var wg sync.WaitGroup
	for _, c := range readers {
		wg.Go(func() {
			for {
				_, m, err := c.Read(ctx)
				if err != nil {
					if !stopping.Load() {
						ended.Add(1)
						firstErr.CompareAndSwap(nil, err)
					}
					return
				}
				v := versionOf(m)
				total.Add(1)
				mu.Lock()
				delivered[v]++
				if delivered[v] == len(readers) {
					delete(delivered, v)
					ch, ok := done[v]
					if !ok {
						ch = make(chan struct{})
						done[v] = ch
					}
					close(ch)
				}
				mu.Unlock()
			}
		})
	}
	wg.Go(func() { // acks
		for {
			if _, _, err := sender.Read(ctx); err != nil {
				return
			}
		}
	})

	content := strings.Repeat("x", size)
	msg := []byte(`{"type":"edit","content":"` + content + `"}`)
	var v int64
	start := time.Now()
	for b.Loop() {
		v++
		if v > window {
			wait(v - window)
		}
		if err := sender.Write(context.Background(), websocket.MessageText, msg); err != nil {
			b.Fatal(err)
		}
	}
	for w := max(v-window+1, 1); w <= v; w++ {
		wait(w)
	}
	elapsed := time.Since(start)
	b.ReportMetric(float64(total.Load())/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(float64(v)/elapsed.Seconds(), "edits/s")
	report()
	stopping.Store(true)
	for _, c := range conns {
		c.CloseNow()
	}
	wg.Wait()
}

// versionOf finds "version":N in a server message.
func versionOf(m []byte) int64 {
	i := bytes.LastIndex(m, []byte(`"version":`))
	if i < 0 {
		return -1
	}
	rest := m[i+len(`"version":`):]
	j := bytes.IndexAny(rest, ",}")
	v, _ := strconv.ParseInt(string(rest[:j]), 10, 64)
	return v
}

// BenchmarkHibernatedSocketMemory measures what an idle WebSocket whose
// document is evicted costs the server: this process serves, a child
// process (this test binary again) holds 10,000 client sockets, and the
// figure is the growth of this process's RSS divided by the sockets. It
// runs once whatever b.N is; run it with -benchtime=1x. Set
// COLLAB_HEAP_PROFILE=file to write a heap profile with the sockets open.
func BenchmarkHibernatedSocketMemory(b *testing.B) {
	const sockets = 10_000
	for _, docs := range []int{sockets, 100} {
		b.Run(fmt.Sprintf("sockets=%d/docs=%d", sockets, docs), func(b *testing.B) {
			benchSocketMemory(b, sockets, docs)
		})
	}
}

func benchSocketMemory(b *testing.B, sockets, docs int) {
	raiseFileLimit(b, uint64(sockets+200))
	h := newHarness(b, nil)
	settle := func() {
		runtime.GC()
		debug.FreeOSMemory()
	}
	settle()
	rss0, heap0, stacks0, g0 := rssBytes(b), heapInuse(), stackInuse(), runtime.NumGoroutine()

	// The clients, in a child process.
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperClients$", "-test.v")
	cmd.Env = append(os.Environ(), fmt.Sprintf("COLLAB_CLIENTS=%s,%d,%d", h.wsURL, sockets, docs))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		stdin.Close()
		cmd.Wait()
	}()
	sc := bufio.NewScanner(stdout)
	ready := false
	for sc.Scan() {
		if sc.Text() == "ready" {
			ready = true
			break
		}
	}
	if !ready {
		b.Fatal("the client process did not connect its sockets")
	}
	go func() {
		for sc.Scan() {
		}
	}()
	connected := time.Since(start)
	h.evict(b) // every document out of memory: only the runtime holds the sockets
	runtime.GC()
	rssGC := rssBytes(b)
	settle()
	rss, heap, stacks, g := rssBytes(b), heapInuse(), stackInuse(), runtime.NumGoroutine()
	if path := os.Getenv("COLLAB_HEAP_PROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		pprof.WriteHeapProfile(f)
		f.Close()
	}
	for b.Loop() {
	}
	per := func(after, before uint64) float64 {
		return (float64(after) - float64(before)) / float64(sockets) / 1024
	}
	b.ReportMetric(per(rss, rss0), "RSS-KiB/socket")
	b.ReportMetric(per(rssGC, rss0), "RSS-before-scavenge-KiB/socket")
	b.ReportMetric(per(heap, heap0), "heap-KiB/socket")
	b.ReportMetric(per(stacks, stacks0), "stack-KiB/socket")
	b.ReportMetric(float64(g-g0)/float64(sockets), "goroutines/socket")
	b.ReportMetric(connected.Seconds(), "connect-s")
}

func rssBytes(tb testing.TB) uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		tb.Skip("no /proc/self/status")
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	tb.Fatal("no VmRSS")
	return 0
}

func heapInuse() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

func stackInuse() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.StackInuse
}

// TestHelperClients is the client process of BenchmarkHibernatedSocketMemory:
// it connects the sockets named by COLLAB_CLIENTS (url,sockets,docs),
// reads each one's init, says "ready" and holds them until stdin closes.
func TestHelperClients(t *testing.T) {
	spec := os.Getenv("COLLAB_CLIENTS")
	if spec == "" {
		t.Skip("the client process of BenchmarkHibernatedSocketMemory")
	}
	parts := strings.Split(spec, ",")
	url := parts[0]
	sockets, _ := strconv.Atoi(parts[1])
	docs, _ := strconv.Atoi(parts[2])
	raiseFileLimit(t, uint64(sockets+100))
	conns := make([]*websocket.Conn, sockets)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= sockets {
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				c, _, err := websocket.Dial(ctx, fmt.Sprintf("%s/doc-%d", url, i%docs), nil)
				if err == nil {
					_, _, err = c.Read(ctx)
				}
				cancel()
				if err != nil {
					t.Errorf("socket %d: %v", i, err)
					return
				}
				conns[i] = c
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	fmt.Println("ready")
	bufio.NewReader(os.Stdin).ReadString('\n') // until EOF
	for _, c := range conns {
		c.CloseNow()
	}
}
