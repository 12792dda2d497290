package ratelimit

import (
	"context"
	"encoding/binary"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/durableobjects/durable"
)

// BenchmarkCheck measures checks through the Client on a real runtime
// (durability barrier, real SQLite files, the system clock):
//
//	go test ./patterns/ratelimit -run '^$' -bench Check -benchtime 3s
//
// keys=1: 64 callers on one hot key (one object: bounded by its event loop
// and group commit). keys=10000: 256 callers spread over 10,000 keys whose
// objects exist before the timer starts (bounded by the durability
// barrier's sync rounds across objects). new-keys: 64 callers, each check
// on a key never seen before (creating its object and file). Every check is allowed, so each
// one writes; the window (1 h) is longer than a run, so no cleanup runs
// meanwhile. put-baseline is the same load on a trivial object that makes
// one KV put per event: read the limiter's figures as ratios to it, from
// the same run (this machine is shared; absolute figures drift). Reports
// calls/s as checks/s, and the events one sync round made durable.
func BenchmarkCheck(b *testing.B) {
	ctx := context.Background()
	algos := []Algorithm{SlidingLog, TokenBucket}
	req := func(a Algorithm) Request { return Request{Limit: MaxLimit, WindowMS: 3_600_000, Algorithm: a} }
	const keys = 10_000
	names := make([]string, keys)
	for i := range names {
		names[i] = fmt.Sprintf("key-%05d", i)
	}

	// The one-key cases share a runtime; each many-key case has its own,
	// its keys created once, untimed, and closed before the next one opens.
	hot := lazyRuntime(b, nil)
	for _, algo := range algos {
		b.Run(fmt.Sprintf("%s/keys=1", algo), func(b *testing.B) {
			s := hot.get(b)
			benchChecks(b, s.rt, 64, func(ctx context.Context, _ uint64) error {
				_, err := s.c.Check(ctx, "hot", req(algo))
				return err
			})
		})
	}
	b.Run("put-baseline/keys=1", func(b *testing.B) {
		s := hot.get(b)
		stub := s.puts.GetByName("hot")
		benchChecks(b, s.rt, 64, func(ctx context.Context, _ uint64) error { return put(ctx, stub) })
	})
	hot.close(b)

	many := lazyRuntime(b, func(s *benchSetup, i int) error {
		for _, a := range algos {
			if _, err := s.c.Check(ctx, names[i], req(a)); err != nil {
				return err
			}
		}
		return nil
	})
	for _, algo := range algos {
		b.Run(fmt.Sprintf("%s/keys=%d", algo, keys), func(b *testing.B) {
			s := many.get(b)
			benchChecks(b, s.rt, 256, func(ctx context.Context, n uint64) error {
				_, err := s.c.Check(ctx, names[n*7919%keys], req(algo))
				return err
			})
		})
	}
	many.close(b)

	// new-keys: every check is the first of its key, which creates the
	// key's object and database file (the per-client-IP case).
	fresh := lazyRuntime(b, nil)
	for _, algo := range algos {
		b.Run(fmt.Sprintf("%s/new-keys", algo), func(b *testing.B) {
			s := fresh.get(b)
			benchChecks(b, s.rt, 64, func(ctx context.Context, n uint64) error {
				_, err := s.c.Check(ctx, fmt.Sprintf("new-%s-%d-%d", algo, b.N, n), req(algo))
				return err
			})
		})
	}
	b.Run("put-baseline/new-keys", func(b *testing.B) {
		s := fresh.get(b)
		benchChecks(b, s.rt, 64, func(ctx context.Context, n uint64) error {
			return put(ctx, s.puts.GetByName(fmt.Sprintf("new-%d-%d", b.N, n)))
		})
	})
	fresh.close(b)

	manyPuts := lazyRuntime(b, func(s *benchSetup, i int) error { return put(ctx, s.puts.GetByName(names[i])) })
	b.Run(fmt.Sprintf("put-baseline/keys=%d", keys), func(b *testing.B) {
		s := manyPuts.get(b)
		stubs := make([]*durable.Stub, keys)
		for i := range stubs {
			stubs[i] = s.puts.GetByName(names[i])
		}
		benchChecks(b, s.rt, 256, func(ctx context.Context, n uint64) error { return put(ctx, stubs[n*7919%keys]) })
	})
	manyPuts.close(b)
}

// benchSetup is a runtime with the limiter and the baseline registered,
// opened on first use (so a -bench filter that skips it costs nothing).
type benchSetup struct {
	parent *testing.B
	warm   func(s *benchSetup, i int) error // called for keys 0..9999, or nil
	once   sync.Once
	rt     *durable.Runtime
	c      *Client
	puts   *durable.Namespace
}

func lazyRuntime(parent *testing.B, warm func(s *benchSetup, i int) error) *benchSetup {
	return &benchSetup{parent: parent, warm: warm}
}

func (s *benchSetup) get(b *testing.B) *benchSetup {
	s.once.Do(func() {
		s.rt, s.c, s.puts = benchRuntime(s.parent)
		if s.warm != nil {
			each(b, 10_000, func(i int) error { return s.warm(s, i) })
		}
	})
	return s
}

func (s *benchSetup) close(b *testing.B) {
	if s.rt != nil {
		closeRuntime(b, s.rt)
	}
}

func put(ctx context.Context, stub *durable.Stub) error {
	_, err := durable.Call[struct{}](ctx, stub, "Put", nil)
	return err
}

// putObject is the baseline: one KV put per event, of a value that
// changes (SQLite does not write a cell rewritten with the same bytes).
type putObject struct {
	st *durable.State
	n  uint64
}

func (p *putObject) Put(ctx context.Context) error {
	p.n++
	return p.st.Storage().Put("k", binary.BigEndian.AppendUint64(nil, p.n))
}

func benchRuntime(b *testing.B) (*durable.Runtime, *Client, *durable.Namespace) {
	b.Helper()
	rt := durable.NewRuntime(b.TempDir())
	// Each object in memory holds two files (database and WAL), and under
	// churn the runtime overshoots MaxActive while evictions catch up: keep
	// it well within the process's file limit (20,000 here, which the
	// default of 10,000 objects does not fit). The keys beyond it are
	// evicted and activated again as the load reaches them, for the
	// limiter and the baseline alike.
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil {
		if n := int(lim.Cur / 3); n < durable.DefaultMaxActive*2 {
			rt.MaxActive = max(n, 64)
		}
	}
	c, err := Register(rt)
	if err != nil {
		b.Fatal(err)
	}
	puts, err := rt.Register("put", func(st *durable.State) any { return &putObject{st: st} })
	if err != nil {
		b.Fatal(err)
	}
	if err := rt.Open(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { closeRuntime(b, rt) }) // a no-op once closed
	return rt, c, puts
}

func closeRuntime(b *testing.B, rt *durable.Runtime) {
	if err := rt.Close(context.Background()); err != nil {
		b.Error(err)
	}
}

// each calls fn(0..n-1) from 64 goroutines.
func each(b *testing.B, n int, fn func(i int) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
				if err := fn(int(i)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// benchChecks runs fn from callers goroutines for b.N calls in all; n
// numbers the calls.
func benchChecks(b *testing.B, rt *durable.Runtime, callers int, fn func(ctx context.Context, n uint64) error) {
	b.Helper()
	procs := runtime.GOMAXPROCS(0)
	b.SetParallelism((callers + procs - 1) / procs)
	var seq atomic.Uint64
	before := rt.Stats()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			if err := fn(ctx, seq.Add(1)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	after := rt.Stats()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "checks/s")
	if rounds := after.SyncRounds - before.SyncRounds; rounds > 0 {
		b.ReportMetric(float64(after.EventsRun-before.EventsRun)/float64(rounds), "events/sync")
	}
}
