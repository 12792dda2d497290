package loadgen

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// Defaults for the zero fields of a [Config].
const (
	DefaultConns          = 16
	DefaultRequestTimeout = 10 * time.Second
)

// ErrNotLoopback is returned for a target outside 127.0.0.0/8, ::1 and
// localhost.
var ErrNotLoopback = errors.New("loadgen: target is not a loopback address (only 127.0.0.0/8, ::1 and localhost are allowed)")

// Config describes one run.
type Config struct {
	// BaseURL is the server's root, e.g. "http://127.0.0.1:8080". It must
	// name a loopback address.
	BaseURL string
	// Token, if set, is sent as "Authorization: Bearer <Token>".
	Token string
	// Conns is the number of concurrent keep-alive connections and workers
	// (default DefaultConns).
	Conns int
	// Duration bounds the measured phase in time. At least one of Duration
	// and Ops must be set; with both, the run stops at whichever comes first.
	Duration time.Duration
	// Ops bounds the measured phase in operations.
	Ops int64
	// Warmup, if set, runs the scenario this long before measuring, on the
	// same connections; its requests are not reported.
	Warmup time.Duration
	// Scenario names the workload; see [Scenarios].
	Scenario string
	// RequestTimeout bounds each HTTP request (default DefaultRequestTimeout).
	RequestTimeout time.Duration
	// Seed makes the random choices of a scenario repeatable; 0 picks one.
	Seed uint64
}

func (c Config) withDefaults() Config {
	if c.Conns == 0 {
		c.Conns = DefaultConns
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	return c
}

func (c Config) validate() error {
	if _, err := CheckTarget(c.BaseURL); err != nil {
		return err
	}
	if c.Conns < 1 {
		return fmt.Errorf("loadgen: conns must be ≥ 1, got %d", c.Conns)
	}
	if c.Duration < 0 || c.Ops < 0 || c.Warmup < 0 {
		return errors.New("loadgen: duration, ops and warmup must not be negative")
	}
	if c.Duration == 0 && c.Ops == 0 {
		return errors.New("loadgen: set a duration, an op count, or both")
	}
	if _, ok := Lookup(c.Scenario); !ok {
		return fmt.Errorf("loadgen: unknown scenario %q (known: %s)", c.Scenario, strings.Join(ScenarioNames(), ", "))
	}
	return nil
}

// CheckTarget parses base and returns it if it is an http:// URL whose host
// is a loopback IP literal or "localhost"; otherwise it returns an error
// wrapping ErrNotLoopback (or describing the malformed URL). Host names other
// than localhost are refused without being resolved.
func CheckTarget(base string) (*url.URL, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("loadgen: bad base URL %q: %w", base, err)
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("loadgen: base URL %q: scheme must be http", base)
	}
	host := u.Hostname()
	if host == "" {
		return nil, fmt.Errorf("loadgen: base URL %q has no host", base)
	}
	if !isLoopbackHost(host) {
		return nil, fmt.Errorf("%w: %q", ErrNotLoopback, host)
	}
	return u, nil
}

func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
