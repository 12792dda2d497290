package loadgen

import (
	"math"
	"math/bits"
	"time"
)

// Histogram layout: values below 2^histSubBits nanoseconds get one bucket
// each; above that, every power of two is split into 2^(histSubBits-1)
// buckets, so a bucket is at most 1/2^(histSubBits-1) (0.2 %) of its values
// wide. Values above histMax are clamped into the last bucket (Max stays
// exact).
const (
	histSubBits = 10
	histHalf    = 1 << (histSubBits - 1)
	histMaxBits = 38 // 2^38 ns ≈ 275 s
	histMax     = 1<<histMaxBits - 1
	histBuckets = (histMaxBits-histSubBits+1)*histHalf + histHalf
)

// Histogram records durations with bounded relative error. The zero value is
// ready to use. It is not safe for concurrent use: give each goroutine its
// own and [Histogram.Merge] them.
type Histogram struct {
	counts []uint64 // allocated on first Record
	n      uint64
	sum    float64 // nanoseconds
	min    int64
	max    int64
}

// bucketOf returns the index of the bucket holding v (0 ≤ v ≤ histMax).
func bucketOf(v uint64) int {
	l := bits.Len64(v)
	if l <= histSubBits {
		return int(v)
	}
	shift := l - histSubBits
	return shift*histHalf + int(v>>shift)
}

// bucketHigh returns the largest value that falls into bucket i.
func bucketHigh(i int) int64 {
	if i < 1<<histSubBits {
		return int64(i)
	}
	shift := i/histHalf - 1
	sub := i - shift*histHalf
	return int64(sub)<<shift + (1<<shift - 1)
}

// Record adds one observation. Negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	v := max(int64(d), 0)
	if h.counts == nil {
		h.counts = make([]uint64, histBuckets)
	}
	if h.n == 0 || v < h.min {
		h.min = v
	}
	h.max = max(h.max, v)
	h.n++
	h.sum += float64(v)
	h.counts[bucketOf(uint64(min(v, histMax)))]++
}

// Merge adds every observation of o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	if h.counts == nil {
		h.counts = make([]uint64, histBuckets)
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
	h.sum += o.sum
}

// Count returns the number of observations.
func (h *Histogram) Count() uint64 { return h.n }

// Max returns the largest observation (exact), or 0 if there is none.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Mean returns the arithmetic mean (exact up to float rounding), or 0.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(math.Round(h.sum / float64(h.n)))
}

// Percentile returns the nearest-rank p-th percentile (0 < p ≤ 100): the
// smallest recorded value v such that at least p % of the observations are
// ≤ v, rounded up to the top of its bucket (so never below the true value and
// at most 0.2 % above it) and capped at Max. It returns 0 if h is empty.
func (h *Histogram) Percentile(p float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	// The tiny shrink keeps float noise (99.9/100·1000 = 999.0000000000001)
	// from pushing the rank one past an exact integer.
	rank := uint64(math.Ceil(p / 100 * float64(h.n) * (1 - 1e-12)))
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(min(bucketHigh(i), h.max))
		}
	}
	return time.Duration(h.max)
}
