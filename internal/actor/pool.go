package actor

import (
	"sync"
	"sync/atomic"
	"time"
)

// Pool runs actor loops on goroutines that outlive one loop. A loop ends
// whenever its mailbox empties, which under request/response load is after
// nearly every batch; its goroutine then waits a while for another loop to
// run instead of exiting. The point is the stack: handlers run deep in
// SQLite's call chain, so a fresh goroutine grows (copies) its stack several
// times per burst — 6 % of the server's CPU in a profile of session reads
// (docs/benchmarks.md) — while a parked one keeps the stack it grew.
//
// Go never blocks: it hands fn to a parked goroutine if one is waiting, or
// starts a new one. At most maxIdle goroutines wait at a time, each for at
// most idle; Close stops them and waits for those still running a loop.
type Pool struct {
	idle    time.Duration
	maxIdle int64

	work    chan func() // unbuffered: a send succeeds only if a goroutine waits
	quit    chan struct{}
	waiting atomic.Int64

	mu     sync.Mutex // guards closed
	closed bool
}

// Defaults of NewPool.
const (
	DefaultPoolIdle    = time.Second
	DefaultPoolMaxIdle = 256
)

// NewPool returns a pool whose goroutines wait up to idle for work, at most
// maxIdle of them at once.
func NewPool(idle time.Duration, maxIdle int) *Pool {
	return &Pool{idle: idle, maxIdle: int64(maxIdle), work: make(chan func()), quit: make(chan struct{})}
}

// Go runs fn on a parked goroutine or a new one. After Close, fn still
// runs, on a goroutine of its own.
func (p *Pool) Go(fn func()) {
	select {
	case p.work <- fn:
		return
	default:
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		go fn()
		return
	}
	p.mu.Unlock()
	go p.worker(fn)
}

func (p *Pool) worker(fn func()) {
	var t *time.Timer
	for {
		fn()
		fn = nil
		if p.waiting.Add(1) > p.maxIdle {
			p.waiting.Add(-1)
			return
		}
		if t == nil {
			t = time.NewTimer(p.idle)
		} else {
			t.Reset(p.idle)
		}
		select {
		case fn = <-p.work:
			p.waiting.Add(-1)
		case <-t.C:
			p.waiting.Add(-1)
			return
		case <-p.quit:
			p.waiting.Add(-1)
			t.Stop()
			return
		}
	}
}

// Close stops the parked goroutines; those running a loop exit when it
// ends. It does not wait for them: a loop stuck in a handler that ignores
// its context must not hold up the runtime's Close past its deadline. Go
// keeps working after Close, without parking.
func (p *Pool) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	close(p.quit)
	p.mu.Unlock()
}
