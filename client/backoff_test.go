package client

import (
	"net/http"
	"testing"
	"time"
)

func TestDelay(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		name       string
		rand       float64
		retryAfter time.Duration
		want       []time.Duration // retries 1, 2, …
	}{
		{"low jitter", 0, 0, []time.Duration{50 * ms, 100 * ms, 200 * ms, 400 * ms, 500 * ms, 500 * ms, 500 * ms}},
		{"high jitter", 0.999999, 0, []time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, 1000 * ms, 1000 * ms, 1000 * ms}},
		{"retry-after over backoff", 0, 300 * ms, []time.Duration{300 * ms, 300 * ms, 300 * ms, 400 * ms, 500 * ms}},
		{"retry-after jitter", 0.999999, 300 * ms, []time.Duration{330 * ms, 330 * ms, 400 * ms, 800 * ms, 1000 * ms}},
		{"retry-after at the cap", 0.999999, time.Second, []time.Duration{time.Second, time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := Retry{BaseDelay: 100 * ms, MaxDelay: time.Second, Rand: func() float64 { return tc.rand }}.withDefaults()
			for i, want := range tc.want {
				got, ok := p.delay(i+1, tc.retryAfter)
				if !ok || got.Round(ms) != want {
					t.Errorf("retry %d: %v %v, want %v", i+1, got, ok, want)
				}
			}
		})
	}
	p := Retry{MaxDelay: time.Second}.withDefaults()
	if _, ok := p.delay(1, time.Second+1); ok {
		t.Error("Retry-After over MaxDelay accepted")
	}
	// No overflow however many retries.
	if d, ok := p.delay(1000, 0); !ok || d > time.Second || d < 500*ms {
		t.Errorf("retry 1000: %v", d)
	}
}

func TestDefaults(t *testing.T) {
	p := Retry{}.withDefaults()
	if p.MaxAttempts != DefaultMaxAttempts || p.BaseDelay != DefaultBaseDelay || p.MaxDelay != DefaultMaxDelay || p.Sleep == nil || p.Rand == nil {
		t.Fatalf("defaults: %+v", p)
	}
}

func TestParseRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0}, {"0", 0}, {"-3", 0}, {"x", 0}, {"1", time.Second}, {" 7 ", 7 * time.Second},
		{time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat), 0},
	} {
		if got := parseRetryAfter(tc.in); got != tc.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
	if got := parseRetryAfter(time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)); got < 59*time.Minute || got > time.Hour {
		t.Errorf("an HTTP-date an hour away: %v", got)
	}
}

func TestMS(t *testing.T) {
	for d, want := range map[time.Duration]int64{0: 0, 1: 1, time.Millisecond: 1, time.Millisecond + 1: 2, time.Second: 1000} {
		if got := ms(d); got != want {
			t.Errorf("ms(%v) = %d, want %d", d, got, want)
		}
	}
}
