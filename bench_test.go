package durable_test

// Benchmarks of the core runtime, the same scenarios as `durable bench`
// (internal/corebench) driven by testing.B at a smaller scale:
//
//	go test -bench . -run '^$' -benchtime 2s
//
// Compare runs with benchstat. Throughput benchmarks report events/s (or
// objects/s) and, with the durability barrier, events/sync: how many events
// one sync round made durable. `durable bench` prints the ratios against the
// baselines and the design's targets.

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/durableobjects/durable"
	"github.com/durableobjects/durable/internal/corebench"
)

// BenchmarkOneObject: 64 callers write one object, with group commit (the
// defaults) and with one fsync'd commit per event; "bare" is a SQLite upsert
// loop with no runtime, the ceiling.
func BenchmarkOneObject(b *testing.B) {
	for _, m := range []corebench.Mode{corebench.Syncfs, corebench.PerEvent} {
		b.Run(m.Key, func(b *testing.B) {
			rt, ns := benchRuntime(b, b.TempDir(), m)
			stub := ns.GetByName("one")
			if err := corebench.Put(context.Background(), stub); err != nil {
				b.Fatal(err)
			}
			benchParallel(b, rt, 64, "events/s", func(ctx context.Context) error {
				return corebench.Put(ctx, stub)
			})
		})
	}
	b.Run("bare", func(b *testing.B) {
		bare, err := corebench.OpenBare(filepath.Join(b.TempDir(), "bare.sqlite"))
		if err != nil {
			b.Fatal(err)
		}
		defer bare.Close()
		for b.Loop() {
			if err := bare.Put(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})
}

// BenchmarkManyObjects: 256 callers write random objects of 1,000, with the
// barrier syncing by syncfs or by fdatasync, and with per-object fsync.
func BenchmarkManyObjects(b *testing.B) {
	const objects, callers = 1000, 256
	seed := filepath.Join(b.TempDir(), "seed")
	if err := corebench.FillObjects(context.Background(), seed, objects, 1); err != nil {
		b.Fatal(err)
	}
	for _, m := range []corebench.Mode{corebench.Syncfs, corebench.Fdatasync, corebench.PerObject} {
		// Set up once per mode (the sub-benchmark runs several times): a
		// copy of the closed objects, all activated.
		dir := filepath.Join(b.TempDir(), "data")
		if err := os.CopyFS(dir, os.DirFS(seed)); err != nil {
			b.Fatal(err)
		}
		rt, ns := benchRuntime(b, dir, m)
		stubs := make([]*durable.Stub, objects)
		for i := range stubs {
			stubs[i] = ns.GetByName(corebench.Name(i))
		}
		var next atomic.Int64
		benchEach(b, 64, func(ctx context.Context) bool {
			i := next.Add(1) - 1
			if i >= objects {
				return false
			}
			if err := corebench.Put(ctx, stubs[i]); err != nil {
				b.Error(err)
				return false
			}
			return true
		})
		b.Run(m.Key, func(b *testing.B) {
			var pick atomic.Uint64
			benchParallel(b, rt, callers, "events/s", func(ctx context.Context) error {
				return corebench.Put(ctx, stubs[pick.Add(1)*7919%objects])
			})
		})
		benchClose(b, rt)
	}
}

// BenchmarkCreate: 64 callers each write one key to a fresh name, so every
// event creates an object and its database file.
func BenchmarkCreate(b *testing.B) {
	rt, ns := benchRuntime(b, b.TempDir(), corebench.Syncfs)
	var next atomic.Int64
	benchParallel(b, rt, 64, "objects/s", func(ctx context.Context) error {
		return corebench.Put(ctx, ns.GetByName(corebench.Name(int(next.Add(1)))))
	})
}

// BenchmarkColdActivation: the first call (one read) to an object with a
// small database that is not in memory, against opening and reading its
// file with bare SQLite. Reports p50 and p99 besides the mean.
func BenchmarkColdActivation(b *testing.B) {
	const objects, keys = 200, 10
	data := filepath.Join(b.TempDir(), "data")
	if err := corebench.FillObjects(context.Background(), data, objects, keys); err != nil {
		b.Fatal(err)
	}
	b.Run("durable", func(b *testing.B) {
		ctx := context.Background()
		var (
			rt  *durable.Runtime
			ns  *durable.Namespace
			lat []time.Duration
		)
		for b.Loop() {
			i := len(lat) % objects
			if i == 0 { // all activated: reopen, so every object is cold again
				b.StopTimer()
				if rt != nil {
					benchClose(b, rt)
				}
				rt, ns = benchRuntime(b, data, corebench.Syncfs)
				b.StartTimer()
			}
			t := time.Now()
			if err := corebench.Read(ctx, ns.GetByName(corebench.Name(i))); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t))
		}
		benchClose(b, rt)
		benchLatency(b, lat)
	})
	b.Run("bare", func(b *testing.B) {
		paths, err := corebench.ObjectFiles(data)
		if err != nil || len(paths) != objects {
			b.Fatalf("%d object files, %v", len(paths), err)
		}
		var lat []time.Duration
		for b.Loop() {
			t := time.Now()
			c, err := corebench.BareRead(paths[len(lat)%objects])
			if err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t))
			b.StopTimer()
			c.Close()
			b.StartTimer()
		}
		benchLatency(b, lat)
	})
}

func benchRuntime(b *testing.B, dir string, m corebench.Mode) (*durable.Runtime, *durable.Namespace) {
	b.Helper()
	rt, ns, err := corebench.Open(dir, m)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { corebench.Close(rt) }) // a no-op if closed already
	return rt, ns
}

func benchClose(b *testing.B, rt *durable.Runtime) {
	b.Helper()
	if err := corebench.Close(rt); err != nil {
		b.Fatal(err)
	}
}

// benchParallel runs fn from callers goroutines for b.N calls in all and
// reports the throughput in unit and the barrier's events per sync round.
func benchParallel(b *testing.B, rt *durable.Runtime, callers int, unit string, fn func(ctx context.Context) error) {
	b.Helper()
	procs := runtime.GOMAXPROCS(0)
	b.SetParallelism((callers + procs - 1) / procs)
	ctx := context.Background()
	before := rt.Stats()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := fn(ctx); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), unit)
	if c := corebench.CountersBetween(before, rt.Stats()); c.SyncRounds > 0 {
		b.ReportMetric(c.EventsPerSync, "events/sync")
	}
}

// benchEach calls fn from workers goroutines until it returns false.
func benchEach(b *testing.B, workers int, fn func(ctx context.Context) bool) {
	b.Helper()
	done := make(chan struct{})
	for range workers {
		go func() {
			defer func() { done <- struct{}{} }()
			for fn(context.Background()) {
			}
		}()
	}
	for range workers {
		<-done
	}
}

func benchLatency(b *testing.B, lat []time.Duration) {
	l := corebench.Summarize(lat)
	b.ReportMetric(float64(l.P50)/1e6, "p50-ms")
	b.ReportMetric(float64(l.P99)/1e6, "p99-ms")
}

// BenchmarkIDFromName: the ID of a name (two HMAC-SHA256s, from a pool of
// keyed hashes), next to the same two MACs with a fresh hmac.New each, the
// way it was done before the pool.
func BenchmarkIDFromName(b *testing.B) {
	rt := durable.NewRuntime(b.TempDir())
	ns, err := rt.Register("c", func(*durable.State) any { return struct{}{} })
	if err != nil {
		b.Fatal(err)
	}
	if err := rt.Open(); err != nil {
		b.Fatal(err)
	}
	defer rt.Close(context.Background())
	b.Run("IDFromName", func(b *testing.B) {
		for b.Loop() {
			ns.IDFromName("user-42")
		}
	})
	b.Run("baseline-hmac.New", func(b *testing.B) {
		key := make([]byte, 32)
		for b.Loop() {
			m := hmac.New(sha256.New, key)
			m.Write([]byte("name:user-42"))
			first := m.Sum(nil)[:16]
			m = hmac.New(sha256.New, key)
			m.Write([]byte("mac:"))
			m.Write(first)
			m.Sum(nil)
		}
	})
}
