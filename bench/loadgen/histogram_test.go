package loadgen

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// exactPercentile is the nearest-rank percentile of sorted data, the
// definition Histogram.Percentile approximates.
func exactPercentile(sorted []time.Duration, p float64) time.Duration {
	rank := int(math.Ceil(float64(len(sorted)) * p / 100 * (1 - 1e-12)))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

func TestPercentileKnownData(t *testing.T) {
	// 1..1000 ns: small values are stored exactly.
	var h Histogram
	for i := 1000; i >= 1; i-- {
		h.Record(time.Duration(i))
	}
	tests := []struct {
		p    float64
		want time.Duration
	}{
		{50, 500}, {90, 900}, {99, 990}, {99.9, 999}, {100, 1000}, {0.01, 1}, {0.1, 1}, {0.2, 2},
	}
	for _, tt := range tests {
		if got := h.Percentile(tt.p); got != tt.want {
			t.Errorf("Percentile(%v) = %v, want %v", tt.p, got, tt.want)
		}
	}
	if got, want := h.Count(), uint64(1000); got != want {
		t.Errorf("Count = %d, want %d", got, want)
	}
	if got, want := h.Max(), time.Duration(1000); got != want {
		t.Errorf("Max = %v, want %v", got, want)
	}
	if got, want := h.Mean(), time.Duration(501); got != want { // 500.5 rounds up
		t.Errorf("Mean = %v, want %v", got, want)
	}
}

func TestPercentileSkewed(t *testing.T) {
	// 990 fast requests at 1 ms and 10 slow ones at 200 ms: p99 is still
	// fast, p99.9 is slow.
	var h Histogram
	for range 990 {
		h.Record(time.Millisecond)
	}
	for range 10 {
		h.Record(200 * time.Millisecond)
	}
	within := func(got, want time.Duration) bool {
		return got >= want && float64(got) <= float64(want)*(1+1.0/histHalf)
	}
	if got := h.Percentile(99); !within(got, time.Millisecond) {
		t.Errorf("p99 = %v, want ≈ 1ms", got)
	}
	if got := h.Percentile(99.9); got != 200*time.Millisecond {
		t.Errorf("p99.9 = %v, want 200ms (capped at max)", got)
	}
	if got := h.Percentile(50); !within(got, time.Millisecond) {
		t.Errorf("p50 = %v, want ≈ 1ms", got)
	}
}

func TestPercentileMatchesSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var parts [4]Histogram
	var all []time.Duration
	for i := range 100_000 {
		// Log-uniform between 1 µs and 1 s, like real latencies.
		d := time.Duration(float64(time.Microsecond) * math.Pow(10, rng.Float64()*6))
		all = append(all, d)
		parts[i%4].Record(d)
	}
	var h Histogram
	for i := range parts {
		h.Merge(&parts[i])
	}
	slices.Sort(all)
	for _, p := range []float64{1, 10, 50, 90, 99, 99.9, 99.99, 100} {
		want := exactPercentile(all, p)
		got := h.Percentile(p)
		if got < want || float64(got) > float64(want)*(1+1.0/histHalf) {
			t.Errorf("Percentile(%v) = %v, exact %v: outside [exact, exact·(1+1/%d)]", p, got, want, histHalf)
		}
	}
	if got, want := h.Max(), all[len(all)-1]; got != want {
		t.Errorf("Max = %v, want %v", got, want)
	}
}

func TestBucketBounds(t *testing.T) {
	// Every value lies in a bucket whose top is ≥ the value and within the
	// promised relative error, and bucket tops increase.
	prev := int64(-1)
	for i := range histBuckets {
		hi := bucketHigh(i)
		if hi <= prev {
			t.Fatalf("bucketHigh(%d) = %d, not above bucketHigh(%d) = %d", i, hi, i-1, prev)
		}
		if got := bucketOf(uint64(hi)); got != i {
			t.Fatalf("bucketOf(bucketHigh(%d)=%d) = %d", i, hi, got)
		}
		if got := bucketOf(uint64(prev + 1)); got != i {
			t.Fatalf("bucketOf(%d) = %d, want %d", prev+1, got, i)
		}
		prev = hi
	}
	if prev != histMax {
		t.Errorf("last bucket tops at %d, want %d", prev, histMax)
	}
}

func TestEmptyHistogram(t *testing.T) {
	var h Histogram
	if h.Percentile(99) != 0 || h.Max() != 0 || h.Mean() != 0 || h.Count() != 0 {
		t.Error("empty histogram reports non-zero figures")
	}
}
