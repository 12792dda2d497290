package sqlstore

import (
	"errors"
	"sync"

	"github.com/ncruces/go-sqlite3"
)

// ScratchPool lends scratch databases: in-memory databases with the
// template's schema, on which read-only SQL of an object with no file yet
// runs (it finds the tables a new object has, and nothing in them), and on
// which any statement of such an object is first prepared, to tell whether
// it writes. Making one per object costs a SQLite instance and a schema:
// for a rate-limit key's first check that was a fifth of its CPU
// (docs/benchmarks.md). A store borrows one for a turn and gives it back
// when the turn ends, with its statements closed; only read-only statements
// ever run on it, so it stays as it was. One that ran a PRAGMA (which may
// change the connection's settings) is closed instead.
type ScratchPool struct {
	// Schema is the class schema of the template (see NewTemplate): a
	// scratch database has the tables a new object has.
	Schema string

	mu     sync.Mutex
	free   []*sqlite3.Conn
	closed bool
}

// maxFreeScratch bounds the idle scratch databases a pool keeps (about
// 330 KiB each).
const maxFreeScratch = 8

func newScratch(classSchema string) (*sqlite3.Conn, error) {
	c, err := sqlite3.Open(":memory:")
	if err != nil {
		return nil, err
	}
	err = c.Exec(schema)
	if err == nil && classSchema != "" {
		err = execClassSchema(c, classSchema)
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	setLimits(c)
	return c, nil
}

func (p *ScratchPool) get() (*sqlite3.Conn, error) {
	if p != nil {
		p.mu.Lock()
		if n := len(p.free); n > 0 {
			c := p.free[n-1]
			p.free[n-1] = nil
			p.free = p.free[:n-1]
			p.mu.Unlock()
			return c, nil
		}
		p.mu.Unlock()
		return newScratch(p.Schema)
	}
	return newScratch("")
}

func (p *ScratchPool) put(c *sqlite3.Conn) error {
	if p != nil {
		p.mu.Lock()
		if !p.closed && len(p.free) < maxFreeScratch {
			p.free = append(p.free, c)
			p.mu.Unlock()
			return nil
		}
		p.mu.Unlock()
	}
	return c.Close()
}

// Close closes the idle scratch databases; those given back later are
// closed then.
func (p *ScratchPool) Close() error {
	p.mu.Lock()
	free := p.free
	p.free, p.closed = nil, true
	p.mu.Unlock()
	var errs []error
	for _, c := range free {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}
