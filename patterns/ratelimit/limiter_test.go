package ratelimit

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/durableobjects/durable"
)

// With limit L and N > L simultaneous checks, exactly L are allowed.
func TestConcurrentChecksAreExact(t *testing.T) {
	for _, algo := range []Algorithm{SlidingLog, TokenBucket} {
		t.Run(string(algo), func(t *testing.T) {
			h := newHarness(t, "", t0)
			var ok, no atomic.Int64
			var wg sync.WaitGroup
			start := make(chan struct{})
			for range 200 {
				wg.Go(func() {
					<-start
					res, err := h.c.Check(context.Background(), "hot", Request{Limit: 50, WindowMS: 60_000, Algorithm: algo})
					switch {
					case err != nil:
						t.Error(err)
					case res.Allowed:
						ok.Add(1)
					default:
						no.Add(1)
					}
				})
			}
			close(start)
			wg.Wait()
			if ok.Load() != 50 || no.Load() != 150 {
				t.Fatalf("%d allowed, %d denied; want 50 and 150", ok.Load(), no.Load())
			}
		})
	}
}

// Counts survive a restart of the runtime on the same directory, and so
// does the cleanup alarm.
func TestStateSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, dir, t0)
	h.expect("k", Request{Limit: 3, WindowMS: 10_000}, allowed(2, 10_000))
	h.at(1000)
	h.expect("k", Request{Limit: 3, WindowMS: 10_000, Cost: 2}, allowed(0, 10_000))
	h.expect("k", tb(3, 1000, 2), allowed(1, 667)) // TAT 1666⅔
	h.close()

	h2 := newHarness(t, dir, t0.Add(1000*time.Millisecond))
	h2.expect("k", Request{Limit: 3, WindowMS: 10_000}, denied(9000))
	h2.expect("k", tb(3, 1000, 2), denied(334)) // needs 1666⅔ + 666⅔ - 1000 = 1333⅓
	h2.expect("k", tb(3, 1000, 1), allowed(0, 1000))
	h2.at(10_000)
	h2.expect("k", Request{Limit: 3, WindowMS: 10_000}, allowed(0, 10_000)) // 1000 (cost 2) and this
	h2.at(21_000)
	h2.waitStats("k", "cleanup after restart", func(st Stats) bool { return st.Entries == 0 && !st.Bucket && st.AlarmAtMS == 0 })
}

// An evicted limiter comes back from storage with the same counts.
func TestStateSurvivesEviction(t *testing.T) {
	h := newHarness(t, "", t0, func(rt *durable.Runtime) { rt.IdleTimeout = time.Second })
	req := Request{Limit: 2, WindowMS: 3_600_000}
	h.expect("k", req, allowed(1, 3_600_000))
	h.expect("k", tb(2, 3_600_000, 1), allowed(1, 1_800_000))
	evictions := h.rt.Stats().Evictions
	h.at(5000)
	deadline := time.Now().Add(10 * time.Second)
	for h.rt.Stats().Evictions == evictions {
		if time.Now().After(deadline) {
			t.Fatal("the limiter was not evicted")
		}
		h.at(h.ms() + 1000) // the janitor runs on the clock
		time.Sleep(time.Millisecond)
	}
	h.at(10_000)
	h.expect("k", req, allowed(0, 3_600_000))
	h.expect("k", req, denied(3_600_000-10_000))
	h.expect("k", tb(2, 3_600_000, 1), allowed(0, 1_800_000*2-10_000))
}

// If the clock steps back (a restart on a machine whose clock was set
// back), the log acts as if time stood still at its newest entry.
func TestClockStepsBack(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, dir, t0.Add(500*time.Millisecond))
	h.expect("k", Request{Limit: 2, WindowMS: 1000}, allowed(1, 1000))
	h.close()
	h2 := newHarness(t, dir, t0) // 500 ms earlier
	// Runs at 500: the entry counts, and durations are from the clock.
	h2.expect("k", Request{Limit: 2, WindowMS: 1000}, allowed(0, 1500))
	h2.expect("k", Request{Limit: 2, WindowMS: 1000}, denied(1500))
	h2.at(1499)
	h2.expect("k", Request{Limit: 2, WindowMS: 1000}, denied(1))
	h2.at(1500)
	h2.expect("k", Request{Limit: 2, WindowMS: 1000}, allowed(1, 1000))
}

func TestInvalidRequests(t *testing.T) {
	h := newHarness(t, "", t0)
	for _, req := range []Request{
		{Limit: 0, WindowMS: 1},
		{Limit: -1, WindowMS: 1},
		{Limit: MaxLimit + 1, WindowMS: 1},
		{Limit: 1, WindowMS: 0},
		{Limit: 1, WindowMS: MaxWindowMS + 1},
		{Limit: 1, WindowMS: 1, Cost: -1},
		{Limit: 5, WindowMS: 1, Cost: 6},
		{Limit: 5, WindowMS: 1, Algorithm: "leaky_bucket"},
		{Limit: 5, WindowMS: 1, Algorithm: "Sliding_Log"},
	} {
		if _, err := h.c.Check(context.Background(), "k", req); !errors.Is(err, ErrInvalid) {
			t.Errorf("check %+v: err = %v, want ErrInvalid", req, err)
		}
	}
	// The object checks too, for calls that do not come through Client.
	_, err := durable.Call[Result](context.Background(), h.c.ns.GetByName("k"), "Check", Request{Limit: 1, WindowMS: 1, Cost: 2})
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("direct call: err = %v, want ErrInvalid", err)
	}
	for _, req := range []Request{
		{Limit: 1, WindowMS: 1},
		{Limit: MaxLimit, WindowMS: MaxWindowMS, Cost: MaxLimit, Algorithm: TokenBucket},
	} {
		if _, err := h.c.Check(context.Background(), "k2", req); err != nil {
			t.Errorf("check %+v: %v", req, err)
		}
	}
}

// A key that was never allowed anything gets no file.
func TestStatsOfAnUnknownKeyWritesNothing(t *testing.T) {
	h := newHarness(t, "", t0)
	// Nothing but the size of the empty database it would start from.
	if st := h.stats("nobody"); st != (Stats{DatabaseBytes: st.DatabaseBytes}) || st.DatabaseBytes <= 0 {
		t.Fatalf("stats %+v, want zero but for the empty database's size", st)
	}
	if st := h.rt.Stats(); st.Commits != 0 {
		t.Fatalf("%d commits for a read", st.Commits)
	}
}

// plans is a test object that holds the limiter's schema and explains
// its queries.
type plans struct{ st *durable.State }

func (p *plans) Explain(ctx context.Context, q string) ([]string, error) {
	s := p.st.Storage()
	if err := exec(s, logSchema); err != nil {
		return nil, err
	}
	args := []any{int64(1), int64(2), int64(3)}
	n := strings.Count(q, "?")
	c, err := s.Exec("EXPLAIN QUERY PLAN "+q, args[:n]...)
	if err != nil {
		return nil, err
	}
	rows, err := c.All()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range rows {
		out = append(out, r[len(r)-1].(string))
	}
	return out, nil
}

// Every statement of a check is an index lookup, never a scan or a sort.
func TestQueryPlans(t *testing.T) {
	dir := t.TempDir()
	rt := durable.NewRuntime(dir)
	ns, err := rt.Register("plans", func(st *durable.State) any { return &plans{st: st} })
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Open(); err != nil {
		t.Fatal(err)
	}
	defer rt.Close(context.Background())
	for _, tc := range []struct{ q, want string }{
		{qWindowStart, "SEARCH rl_log USING COVERING INDEX rl_log_ts (ts>?)"},
		{qFreedAt, "SEARCH rl_log USING INTEGER PRIMARY KEY (rowid>?)"},
		{qNewest, "SCAN rl_log"}, // reading the last rowid: a one-row step, no sort
		{qOldest, "SCAN rl_log"},
		{qExpire, "SEARCH rl_log USING INTEGER PRIMARY KEY (rowid=?)"},
	} {
		plan, err := durable.Call[[]string](context.Background(), ns.GetByName("p"), "Explain", tc.q)
		if err != nil {
			t.Fatalf("%s: %v", tc.q, err)
		}
		got := strings.Join(plan, "; ")
		if !strings.Contains(got, tc.want) || strings.Contains(got, "TEMP B-TREE") {
			t.Errorf("%s\n  plan: %s\n  want: %s and no sort", tc.q, got, tc.want)
		}
	}
}
