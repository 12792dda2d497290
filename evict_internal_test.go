package durable

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

func objectsUsedAt(times []int64) []*object {
	objs := make([]*object, len(times))
	for i, t := range times {
		objs[i] = &object{}
		objs[i].lastUsed.Store(t)
	}
	return objs
}

func usedTimes(objs []*object) []int64 {
	ts := make([]int64, len(objs))
	for i, o := range objs {
		ts[i] = o.lastUsed.Load()
	}
	return ts
}

// leastRecentlyUsed picks what sorting every object by last use and taking
// the first n picks, in that order (ties in any order), for every n.
func TestLeastRecentlyUsedIsTheHeadOfTheSortedObjects(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, size := range []int{0, 1, 2, 7, 100, 1000} {
		times := make([]int64, size)
		for i := range times {
			times[i] = rng.Int64N(int64(size/2 + 1)) // ties included
		}
		objs := objectsUsedAt(times)
		sorted := slices.Clone(times)
		slices.Sort(sorted)
		for _, n := range []int{-1, 0, 1, 3, size / 2, size - 1, size, size + 5} {
			got := leastRecentlyUsed(objs, n)
			want := sorted[:max(0, min(n, size))]
			if !slices.Equal(usedTimes(got), want) {
				t.Fatalf("size %d, n %d: last uses %v, want %v", size, n, usedTimes(got), want)
			}
			seen := map[*object]bool{}
			for _, o := range got {
				if seen[o] {
					t.Fatalf("size %d, n %d: an object twice", size, n)
				}
				seen[o] = true
			}
		}
	}
}

// BenchmarkLeastRecentlyUsed: one eviction pass over MaxActive objects
// picking a few, against sorting them all (what the pass did before).
func BenchmarkLeastRecentlyUsed(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	times := make([]int64, DefaultMaxActive+4)
	for i := range times {
		times[i] = rng.Int64()
	}
	objs := objectsUsedAt(times)
	for _, n := range []int{1, 4, 64} {
		b.Run(fmt.Sprintf("heap/n=%d", n), func(b *testing.B) {
			for b.Loop() {
				leastRecentlyUsed(objs, n)
			}
		})
	}
	b.Run("sort-all", func(b *testing.B) {
		work := slices.Clone(objs)
		for b.Loop() {
			copy(work, objs)
			slices.SortFunc(work, func(a, b *object) int { return cmp.Compare(a.lastUsed.Load(), b.lastUsed.Load()) })
		}
	})
}
