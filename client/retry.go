package client

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Defaults of Retry.
const (
	// DefaultMaxAttempts is how many times a request is sent at most,
	// the first time included.
	DefaultMaxAttempts = 5
	// DefaultBaseDelay is the backoff before the first retry; it doubles
	// with each further retry.
	DefaultBaseDelay = 100 * time.Millisecond
	// DefaultMaxDelay caps the wait before any one retry.
	DefaultMaxDelay = 5 * time.Second
)

// Retry configures retries; its zero value means the defaults. Which
// failures are retried is fixed by the package doc's rule, not here.
type Retry struct {
	// MaxAttempts bounds the attempts of one call, the first included:
	// 1 disables retries. DefaultMaxAttempts if 0.
	MaxAttempts int
	// BaseDelay is the backoff before the first retry, doubling with
	// each further one. DefaultBaseDelay if 0.
	BaseDelay time.Duration
	// MaxDelay caps one wait. A server asking (Retry-After) for a longer
	// wait than MaxDelay ends the retries: the client neither retries
	// sooner than asked nor waits longer than this. DefaultMaxDelay if 0.
	MaxDelay time.Duration
	// Sleep waits d or until ctx is done (then returning ctx.Err()); a
	// timer if nil. Tests inject one to record the waits.
	Sleep func(ctx context.Context, d time.Duration) error
	// Rand returns a number in [0, 1) for the jitter; math/rand/v2 if nil.
	Rand func() float64
}

func (p Retry) withDefaults() Retry {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = DefaultMaxAttempts
	}
	if p.BaseDelay <= 0 {
		p.BaseDelay = DefaultBaseDelay
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = DefaultMaxDelay
	}
	if p.Sleep == nil {
		p.Sleep = sleep
	}
	if p.Rand == nil {
		p.Rand = rand.Float64
	}
	return p
}

// delay is the wait before retry number n (1 for the first retry), given
// the server's Retry-After (0 if none): the exponential backoff
// BaseDelay·2^(n-1), capped at MaxDelay, with "equal jitter" (a uniformly
// random wait in [b/2, b)); at least retryAfter (plus up to 10 % jitter,
// so clients told the same Retry-After do not all return at once), never
// over MaxDelay. ok is false when retryAfter alone is over MaxDelay.
func (p Retry) delay(n int, retryAfter time.Duration) (d time.Duration, ok bool) {
	b := p.BaseDelay
	for i := 1; i < n && b < p.MaxDelay; i++ {
		b *= 2
	}
	b = min(b, p.MaxDelay)
	d = b/2 + time.Duration(p.Rand()*float64(b-b/2))
	if retryAfter > 0 {
		if retryAfter > p.MaxDelay {
			return 0, false
		}
		ra := retryAfter + time.Duration(p.Rand()*float64(retryAfter)/10)
		d = max(d, min(ra, p.MaxDelay))
	}
	return d, true
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an
// HTTP-date (RFC 9110, 10.2.3); 0 if absent or malformed.
func parseRetryAfter(v string) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		return time.Duration(min(n, 1<<30)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

// notSentError is an attempt's failure before the request left the
// client: it had no effect.
type notSentError struct{ err error }

func (e notSentError) Error() string { return e.err.Error() }
func (e notSentError) Unwrap() error { return e.err }

// notSent reports whether err happened before the request left the client
// (see notSentError; a failed dial, for attempts that do not trace their
// requests), so it had no effect.
func notSent(err error) bool {
	var ns notSentError
	var op *net.OpError
	return errors.As(err, &ns) || errors.As(err, &op) && op.Op == "dial"
}
