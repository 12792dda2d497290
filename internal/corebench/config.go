package corebench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/durableobjects/durable"
)

// Config sizes a run of the suite. Zero fields take the defaults below.
type Config struct {
	// Dir is where scenarios make their data directories (each removes its
	// own when done). Required.
	Dir string
	// Duration is the measured time of each configuration, split into
	// Rounds windows that alternate with the other configurations of the
	// scenario; each window follows Warmup of load that is not counted.
	Duration time.Duration
	Rounds   int
	Warmup   time.Duration
	// Log receives progress lines; nil discards them.
	Log io.Writer

	OneCallers    int // callers on the single object
	ManyObjects   int // objects of the many-objects scenario
	ManyCallers   int // callers spread over them
	CreateCallers int // callers creating objects
	ColdObjects   int // objects activated cold per pass
	ColdKeys      int // keys each cold object holds
}

// Defaults of Config, as the issue states the scenarios.
const (
	DefaultDuration      = 3 * time.Second
	DefaultRounds        = 3
	DefaultWarmup        = 250 * time.Millisecond
	DefaultOneCallers    = 64
	DefaultManyObjects   = 1000
	DefaultManyCallers   = 256
	DefaultCreateCallers = 64
	DefaultColdObjects   = 1000
	DefaultColdKeys      = 10
)

func (c Config) withDefaults() Config {
	set := func(p *int, v int) {
		if *p <= 0 {
			*p = v
		}
	}
	if c.Duration <= 0 {
		c.Duration = DefaultDuration
	}
	if c.Warmup <= 0 {
		c.Warmup = DefaultWarmup
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	set(&c.Rounds, DefaultRounds)
	set(&c.OneCallers, DefaultOneCallers)
	set(&c.ManyObjects, DefaultManyObjects)
	set(&c.ManyCallers, DefaultManyCallers)
	set(&c.CreateCallers, DefaultCreateCallers)
	set(&c.ColdObjects, DefaultColdObjects)
	set(&c.ColdKeys, DefaultColdKeys)
	return c
}

func (c Config) logf(format string, args ...any) {
	fmt.Fprintf(c.Log, format+"\n", args...)
}

// timed runs fn and logs how long it took.
func (c Config) timed(what string, fn func() error) error {
	start := time.Now()
	err := fn()
	c.logf("  %s: %.2fs", what, time.Since(start).Seconds())
	return err
}

// scratch makes a fresh directory for one run under c.Dir and returns it
// with a function that removes it.
func (c Config) scratch(name string) (string, func(), error) {
	dir, err := os.MkdirTemp(c.Dir, name+"-")
	if err != nil {
		return "", nil, err
	}
	return dir, func() { os.RemoveAll(dir) }, nil
}

// runtimes are runtimes open side by side, one per configuration of a
// scenario, so their measurements can alternate.
type runtimes struct {
	rts []*durable.Runtime
	nss []*durable.Namespace
}

// openRuntimes opens a runtime for modes[i] on the data directory dirs[i].
// On error the ones opened are closed.
func openRuntimes(dirs []string, modes []Mode) (*runtimes, error) {
	s := &runtimes{}
	for i, m := range modes {
		rt, ns, err := Open(dirs[i], m)
		if err != nil {
			s.close(Config{Log: io.Discard})
			return nil, err
		}
		s.rts = append(s.rts, rt)
		s.nss = append(s.nss, ns)
	}
	return s, nil
}

// close closes the runtimes concurrently: closing checkpoints every
// object's database, which takes a while with many objects.
func (s *runtimes) close(c Config) error {
	return c.timed("close", func() error {
		errs := make([]error, len(s.rts))
		var wg sync.WaitGroup
		for i, rt := range s.rts {
			wg.Go(func() { errs[i] = Close(rt) })
		}
		wg.Wait()
		return errors.Join(errs...)
	})
}

// parallel calls fn(i) for every i in [0, n) from workers goroutines and
// returns the first error.
func parallel(ctx context.Context, n, workers int, fn func(ctx context.Context, i int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for range min(workers, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := fn(ctx, i); err != nil {
					once.Do(func() { first = err })
					return
				}
			}
		})
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}
