package redispeer

import (
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestSlidingLog(t *testing.T) {
	p := newPeer(t, Config{})
	body := `{"limit":3,"window_ms":60000}`
	for i, want := range []float64{2, 1, 0} {
		status, m, _ := p.do("POST", "/v1/ratelimit/k/check", body)
		if status != 200 || m["allowed"] != true || m["remaining"] != want || m["reset_ms"] != 60000.0 {
			t.Fatalf("check %d: %d %v, want allowed remaining %v reset 60000", i, status, m, want)
		}
	}
	status, m, hdr := p.do("POST", "/v1/ratelimit/k/check", body)
	if status != 429 || m["allowed"] != false || m["remaining"] != 0.0 || errCode(m) != "rate_limited" {
		t.Fatalf("4th check: %d %v", status, m)
	}
	retry := m["retry_after_ms"].(float64)
	if retry < 1 || retry > 60000 {
		t.Errorf("retry_after_ms = %v, want in 1..60000", retry)
	}
	if got, want := hdr.Get("Retry-After"), strconv.Itoa(int((retry+999)/1000)); got != want {
		t.Errorf("Retry-After = %q, want %q", got, want)
	}
	// Another key is independent.
	if status, _, _ := p.do("POST", "/v1/ratelimit/other/check", body); status != 200 {
		t.Errorf("other key: %d", status)
	}
	// A check with a larger limit counts the same history: 3 used of 5.
	if status, m, _ := p.do("POST", "/v1/ratelimit/k/check", `{"limit":5,"window_ms":60000,"cost":2}`); status != 200 || m["remaining"] != 0.0 {
		t.Errorf("cost 2 of limit 5 after 3: %d %v, want allowed, remaining 0", status, m)
	}
}

func TestSlidingLogDeniedNotCounted(t *testing.T) {
	p := newPeer(t, Config{})
	body := `{"limit":2,"window_ms":300}`
	for range 2 {
		if status, _, _ := p.do("POST", "/v1/ratelimit/d/check", body); status != 200 {
			t.Fatal("first two checks not allowed")
		}
	}
	// Hammer while denied: denials must not extend the window. Poll until
	// the first entries leave it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		status, _, _ := p.do("POST", "/v1/ratelimit/d/check", body)
		if status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("still denied 10s after a 300ms window: denied checks were counted")
		}
	}
}

func TestSlidingLogAtomic(t *testing.T) {
	p := newPeer(t, Config{})
	const limit, n = 40, 200
	var allowed, denied atomic.Int64
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			status, _, _ := p.do("POST", "/v1/ratelimit/race/check", fmt.Sprintf(`{"limit":%d,"window_ms":60000}`, limit))
			switch status {
			case 200:
				allowed.Add(1)
			case 429:
				denied.Add(1)
			}
		})
	}
	wg.Wait()
	if allowed.Load() != limit || denied.Load() != n-limit {
		t.Errorf("allowed %d, denied %d; want %d, %d", allowed.Load(), denied.Load(), limit, n-limit)
	}
}

func TestTokenBucket(t *testing.T) {
	p := newPeer(t, Config{})
	body := `{"limit":3,"window_ms":60000,"algorithm":"token_bucket"}`
	for i, want := range []float64{2, 1, 0} {
		status, m, _ := p.do("POST", "/v1/ratelimit/tb/check", body)
		if status != 200 || m["remaining"] != want {
			t.Fatalf("check %d: %d %v, want remaining %v", i, status, m, want)
		}
		if reset := m["reset_ms"].(float64); reset < 20000*float64(i+1)-50 || reset > 20000*float64(i+1) {
			t.Errorf("check %d: reset_ms %v, want ≈ %d", i, reset, 20000*(i+1))
		}
	}
	status, m, _ := p.do("POST", "/v1/ratelimit/tb/check", body)
	if status != 429 {
		t.Fatalf("4th: %d %v", status, m)
	}
	// One token refills every 20 s.
	if retry := m["retry_after_ms"].(float64); retry < 19900 || retry > 20000 {
		t.Errorf("retry_after_ms = %v, want ≈ 20000", retry)
	}
	// The sliding log of the same key is separate storage but obeys the
	// same contract: a huge limit with a fractional refill interval.
	big := `{"limit":1000000000,"window_ms":60000,"algorithm":"token_bucket"}`
	for range 3 {
		if status, m, _ := p.do("POST", "/v1/ratelimit/big/check", big); status != 200 || m["remaining"].(float64) < 1e9-4 {
			t.Fatalf("big bucket: %d %v", status, m)
		}
	}
}

func TestTokenBucketAtomic(t *testing.T) {
	p := newPeer(t, Config{})
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() {
			if status, _, _ := p.do("POST", "/v1/ratelimit/tbr/check", `{"limit":25,"window_ms":3600000,"algorithm":"token_bucket"}`); status == 200 {
				allowed.Add(1)
			}
		})
	}
	wg.Wait()
	if allowed.Load() != 25 {
		t.Errorf("allowed %d of 100, want 25", allowed.Load())
	}
}

func TestSlidingLogExpires(t *testing.T) {
	p := newPeer(t, Config{})
	p.do("POST", "/v1/ratelimit/e/check", `{"limit":5,"window_ms":60000}`)
	rdb := p.srv.rdb
	for _, key := range []string{"rl:e", "rlm:e"} {
		ttl, err := rdb.PTTL(t.Context(), key).Result()
		if err != nil || ttl <= 0 || ttl > time.Minute {
			t.Errorf("PTTL %s = %v, %v; want an expiry ≤ the window", key, ttl, err)
		}
	}
}
