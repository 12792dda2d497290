package torture

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestOverload floods one object (a rate-limit key, or a lock that every
// client waits for) with far more concurrent clients than its queue holds
// (--max-queue) and checks that the server sheds the excess: the hot
// object answers 503 overloaded with Retry-After and the api.md error
// body, other objects keep answering, and the server's memory stays
// bounded. It logs the figures docs/benchmarks.md records; the knobs are
// DURABLE_OVERLOAD_CLIENTS (500), DURABLE_OVERLOAD_QUEUE (--max-queue,
// 5) and DURABLE_OVERLOAD_SECONDS (3).
func TestOverload(t *testing.T) {
	clients := envInt(t, "DURABLE_OVERLOAD_CLIENTS", 500)
	// Small: the object drains its mailbox a batch at a time (up to 256
	// events), so with 50 the 500 clients were at times not enough to fill
	// it on a fast run, and nothing was shed.
	queue := envInt(t, "DURABLE_OVERLOAD_QUEUE", 5)
	seconds := envInt(t, "DURABLE_OVERLOAD_SECONDS", 3)
	if testing.Short() {
		seconds = 1
	}
	for _, target := range []string{"ratelimit", "lock"} {
		t.Run(target, func(t *testing.T) {
			s := startServer(t, t.TempDir(), "--max-queue", strconv.Itoa(queue))
			runOverload(t, s, target, clients, time.Duration(seconds)*time.Second)
			s.stop()
		})
	}
}

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// latencies is a concurrent list of durations.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

// pct returns the p-th percentile (0 < p <= 100) and the count.
func (l *latencies) pct(p float64) (time.Duration, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.d) == 0 {
		return 0, 0
	}
	s := slices.Clone(l.d)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.5) - 1
	return s[min(max(i, 0), len(s)-1)], len(s)
}

func (l *latencies) String() string {
	p50, n := l.pct(50)
	p99, _ := l.pct(99)
	max, _ := l.pct(100)
	return fmt.Sprintf("n=%d p50=%v p99=%v max=%v", n, p50.Round(10*time.Microsecond), p99.Round(10*time.Microsecond), max.Round(10*time.Microsecond))
}

// probe sends requests to other objects (rate-limit keys cold-k) one after
// another until stop is closed, recording their latency; every answer must
// be 200.
func probe(t *testing.T, s *server, c *http.Client, lat *latencies, stop <-chan struct{}, prefix string) {
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		r, err := call(ctx, c, "POST", fmt.Sprintf("%s/v1/ratelimit/%s-%d/check", s.URL, prefix, i%200),
			map[string]any{"limit": 1_000_000, "window_ms": 60_000})
		cancel()
		if err != nil {
			t.Errorf("probe of another key: %v", err)
			return
		}
		if r.Status != http.StatusOK {
			t.Errorf("probe of another key: %d %s", r.Status, r.Body)
			return
		}
		lat.add(time.Since(start))
	}
}

// runProbes runs 4 probes for d.
func runProbes(t *testing.T, s *server, c *http.Client, d time.Duration, prefix string) *latencies {
	lat := &latencies{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() { probe(t, s, c, lat, stop, fmt.Sprintf("%s%d", prefix, i)) })
	}
	time.Sleep(d) // the measuring period
	close(stop)
	wg.Wait()
	return lat
}

func runOverload(t *testing.T, s *server, target string, clients int, d time.Duration) {
	probeClient := newClient(8, 30*time.Second)
	runProbes(t, s, probeClient, 300*time.Millisecond, "warm") // first activations, connections
	rssBefore := s.rssKiB()
	base := runProbes(t, s, probeClient, time.Second, "base")

	flood := newClient(clients, 90*time.Second)
	var (
		ok, shed, other atomic.Int64
		shedLat         latencies
		badShed         atomic.Value // first malformed 503
		stop            = make(chan struct{})
		wg              sync.WaitGroup
	)
	hot := "/v1/ratelimit/hot/check"
	body := map[string]any{"limit": 1_000_000_000, "window_ms": 60_000}
	if target == "lock" {
		hot = "/v1/locks/hot/acquire"
		body = map[string]any{"ttl_ms": 5, "wait_ms": 2000}
	}
	for range clients {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
				r, err := call(ctx, flood, "POST", s.URL+hot, body)
				cancel()
				switch {
				case err != nil:
					t.Errorf("flood request: %v", err)
					return
				case r.Status == http.StatusOK:
					ok.Add(1)
				case r.Status == http.StatusServiceUnavailable:
					shed.Add(1)
					shedLat.add(time.Since(start))
					if r.errorCode() != "overloaded" || r.Header.Get("Retry-After") == "" ||
						!strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
						badShed.CompareAndSwap(nil, fmt.Sprintf("%v %s", r.Header, r.Body))
					}
				case target == "lock" && r.Status == http.StatusConflict && r.errorCode() == "lock_held":
					other.Add(1)
				default:
					t.Errorf("flood request: %d %s", r.Status, r.Body)
					return
				}
			}
		})
	}
	// RSS while flooded, sampled.
	var rssMax atomic.Int64
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			rssMax.Store(max(rssMax.Load(), s.rssKiB()))
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	time.Sleep(300 * time.Millisecond) // let the flood build up
	during := runProbes(t, s, probeClient, d, "flood")
	close(stop)
	wg.Wait()
	<-sampled
	flood.CloseIdleConnections()
	rssAfter := s.rssKiB()

	if v := badShed.Load(); v != nil {
		t.Errorf("a 503 without Retry-After or the overloaded error body: %s", v)
	}
	t.Logf("%s: %d clients on one object, --max-queue from the flags: %d answered 200, %d answered 503 overloaded, %d answered 409",
		target, clients, ok.Load(), shed.Load(), other.Load())
	t.Logf("%s: latency of the 503s at the client: %v", target, &shedLat)
	t.Logf("%s: time the server took to answer them (access log): %v", target, serverDurations(s, "503"))
	t.Logf("%s: other keys without the flood: %v", target, base)
	t.Logf("%s: other keys during the flood:  %v", target, during)
	t.Logf("%s: server RSS before %d MiB, during (max) %d MiB, after %d MiB", target, rssBefore>>10, rssMax.Load()>>10, rssAfter>>10)
	// Waiting lock acquires wait outside the object's gate, so they do not
	// hold its queue: a lock flood may or may not overflow it. A flood of
	// rate-limit checks always does.
	if shed.Load() == 0 && target == "ratelimit" {
		t.Errorf("%s: no request was shed with 503 overloaded", target)
	}
	if _, n := during.pct(50); n == 0 {
		t.Errorf("%s: no request to another key completed during the flood", target)
	}
	const rssBound = 1 << 20 // KiB: 1 GiB, generous
	if rssAfter > rssBound {
		t.Errorf("%s: server RSS %d MiB after the flood, over %d MiB", target, rssAfter>>10, rssBound>>10)
	}
}

var accessLine = regexp.MustCompile(`msg=request .* status=(\d+) .*duration_ms=([0-9.]+)`)

// serverDurations returns the durations the access log gives for the
// answers with status.
func serverDurations(s *server, status string) *latencies {
	l := &latencies{}
	for _, m := range accessLine.FindAllStringSubmatch(s.logs.String(), -1) {
		if m[1] == status {
			ms, _ := strconv.ParseFloat(m[2], 64)
			l.add(time.Duration(ms * float64(time.Millisecond)))
		}
	}
	return l
}

// rssKiB returns the server's resident set size from /proc/<pid>/status.
func (s *server) rssKiB() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return -1
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return -1
}
