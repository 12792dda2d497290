package loadgen

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Result is what one run measured.
type Result struct {
	Scenario string
	Target   string
	Conns    int
	// Elapsed is the wall time of the measured phase.
	Elapsed time.Duration
	// Ops counts completed ops, failed ones included.
	Ops int64
	// FailedOps counts ops with a request that failed: an unexpected status
	// or a transport error.
	FailedOps int64
	// Requests counts HTTP requests that got an answer or a transport error.
	Requests int64
	// Statuses counts answers by HTTP status code.
	Statuses map[int]int64
	// TransportErrors counts requests that got no answer (refused,
	// reset, timed out …).
	TransportErrors int64
	// FirstError describes the first failure seen, if any.
	FirstError string
	// Latency summarizes the duration of every completed op.
	Latency Latency
}

// Latency summarizes a latency distribution.
type Latency struct {
	P50, P90, P99, P999, Max, Mean time.Duration
}

func newResult(cfg Config, sc Scenario, stats []*workerStats, elapsed time.Duration) Result {
	r := Result{
		Scenario: sc.Name,
		Target:   cfg.BaseURL,
		Conns:    cfg.Conns,
		Elapsed:  elapsed,
		Statuses: make(map[int]int64),
	}
	var h Histogram
	for _, s := range stats {
		h.Merge(&s.hist)
		r.Ops += s.ops
		r.FailedOps += s.failed
		r.Requests += s.requests
		r.TransportErrors += s.transport
		for code, n := range s.statuses {
			r.Statuses[code] += n
		}
		if r.FirstError == "" {
			r.FirstError = s.firstErr
		}
	}
	r.Latency = Latency{
		P50:  h.Percentile(50),
		P90:  h.Percentile(90),
		P99:  h.Percentile(99),
		P999: h.Percentile(99.9),
		Max:  h.Max(),
		Mean: h.Mean(),
	}
	return r
}

// OpsPerSec returns completed ops per second of Elapsed.
func (r Result) OpsPerSec() float64 { return perSec(r.Ops, r.Elapsed) }

// RequestsPerSec returns requests per second of Elapsed.
func (r Result) RequestsPerSec() float64 { return perSec(r.Requests, r.Elapsed) }

// Errors returns the number of failed requests: transport errors plus
// answers with a status of 400 or more.
func (r Result) Errors() int64 {
	n := r.TransportErrors
	for code, c := range r.Statuses {
		if code >= 400 {
			n += c
		}
	}
	return n
}

func perSec(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// String formats r as a small table for people.
func (r Result) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "scenario   %s\n", r.Scenario)
	fmt.Fprintf(&b, "target     %s (%d conns, %.2fs)\n", r.Target, r.Conns, r.Elapsed.Seconds())
	fmt.Fprintf(&b, "ops        %d (%.1f/s), %d failed\n", r.Ops, r.OpsPerSec(), r.FailedOps)
	fmt.Fprintf(&b, "requests   %d (%.1f/s)\n", r.Requests, r.RequestsPerSec())
	l := r.Latency
	fmt.Fprintf(&b, "latency    p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  mean %s\n",
		ms(l.P50), ms(l.P90), ms(l.P99), ms(l.P999), ms(l.Max), ms(l.Mean))
	b.WriteString("statuses  ")
	for _, code := range slices.Sorted(maps.Keys(r.Statuses)) {
		fmt.Fprintf(&b, " %d: %d", code, r.Statuses[code])
	}
	if r.TransportErrors > 0 {
		fmt.Fprintf(&b, " transport errors: %d", r.TransportErrors)
	}
	b.WriteString("\n")
	if r.FirstError != "" {
		fmt.Fprintf(&b, "first err  %s\n", r.FirstError)
	}
	return b.String()
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3fms", msf(d)) }

func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// jsonResult is the stable JSON shape of a Result: durations in
// milliseconds, rates per second, status codes as object keys.
type jsonResult struct {
	Scenario        string           `json:"scenario"`
	Target          string           `json:"target"`
	Conns           int              `json:"conns"`
	ElapsedS        float64          `json:"elapsed_s"`
	Ops             int64            `json:"ops"`
	OpsPerSec       float64          `json:"ops_per_s"`
	FailedOps       int64            `json:"failed_ops"`
	Requests        int64            `json:"requests"`
	RequestsPerSec  float64          `json:"requests_per_s"`
	Statuses        map[string]int64 `json:"statuses"`
	TransportErrors int64            `json:"transport_errors"`
	FirstError      string           `json:"first_error,omitempty"`
	Latency         jsonLatency      `json:"latency_ms"`
}

type jsonLatency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// MarshalJSON encodes r with durations in milliseconds and rates per second.
func (r Result) MarshalJSON() ([]byte, error) {
	st := make(map[string]int64, len(r.Statuses))
	for code, n := range r.Statuses {
		st[fmt.Sprint(code)] = n
	}
	l := r.Latency
	return json.Marshal(jsonResult{
		Scenario: r.Scenario, Target: r.Target, Conns: r.Conns,
		ElapsedS: r.Elapsed.Seconds(),
		Ops:      r.Ops, OpsPerSec: r.OpsPerSec(), FailedOps: r.FailedOps,
		Requests: r.Requests, RequestsPerSec: r.RequestsPerSec(),
		Statuses: st, TransportErrors: r.TransportErrors, FirstError: r.FirstError,
		Latency: jsonLatency{P50: msf(l.P50), P90: msf(l.P90), P99: msf(l.P99), P999: msf(l.P999), Max: msf(l.Max), Mean: msf(l.Mean)},
	})
}
