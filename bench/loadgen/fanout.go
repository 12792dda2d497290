package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

const (
	// FanoutClients is the number of WebSocket clients docs-fanout opens
	// on its document.
	FanoutClients = 1_000
	// FanoutContent is the size in bytes of the content one docs-fanout op
	// writes.
	FanoutContent = 64
	// FanoutWait bounds how long one docs-fanout op waits for every client
	// to receive its version, so a delivery that never comes fails the op
	// instead of hanging the run.
	FanoutWait = 30 * time.Second
	// fanoutDialers is the number of sockets docs-fanout opens at a time.
	fanoutDialers = 16
)

// Test knobs: the number of clients, and a hook that sees the scenario's
// state once its sockets are open.
var (
	fanoutClients  = FanoutClients
	fanoutPrepared func(*fanout)
)

var docsFanout = Scenario{
	Name:          "docs-fanout",
	Description:   "PUT /v1/docs/{id} and wait until all 1,000 WebSocket clients of the document received it",
	RequestsPerOp: 1,
	Prepare: func(ctx context.Context, env Env) (func(int) Op, error) {
		id := runName(env.Seed, "doc")
		f := &fanout{pending: map[int64]*delivery{}, broken: make(chan struct{})}
		env.Cleanup(f.close)
		if err := f.open(ctx, env.Client, "/v1/docs/"+url.PathEscape(id), fanoutClients); err != nil {
			return nil, err
		}
		if fanoutPrepared != nil {
			fanoutPrepared(f)
		}
		path := "/v1/docs/" + url.PathEscape(id)
		body, err := json.Marshal(map[string]string{"content": strings.Repeat("x", FanoutContent)})
		if err != nil {
			return nil, err
		}
		return func(int) Op {
			return func(ctx context.Context, c *Client) error {
				var ans struct {
					Version *int64 `json:"version"`
				}
				if err := c.Do(ctx, http.MethodPut, path, body, http.StatusOK, &ans); err != nil {
					return err
				}
				if ans.Version == nil {
					return fmt.Errorf("PUT %s: answer has no version", path)
				}
				return f.wait(ctx, *ans.Version)
			}
		}, nil
	},
}

// fanout holds docs-fanout's sockets and counts, per version, the sockets
// that received it.
type fanout struct {
	conns   []*websocket.Conn
	clients []fanoutClient // one per socket; written by its reader only
	wg      sync.WaitGroup // the readers

	mu      sync.Mutex
	pending map[int64]*delivery

	broken    chan struct{} // closed on the first socket failure
	breakOnce sync.Once
	brokenErr error
	closing   atomic.Bool
}

// fanoutClient is what one socket received: edits, and the last version.
type fanoutClient struct {
	edits, last int64
}

// delivery counts the sockets that received one version; done closes when
// all have.
type delivery struct {
	got  int
	done chan struct{}
}

// entry returns version v's delivery, making it if new. f.mu must be held.
func (f *fanout) entry(v int64) *delivery {
	d := f.pending[v]
	if d == nil {
		d = &delivery{done: make(chan struct{})}
		f.pending[v] = d
	}
	return d
}

// open connects n sockets to path on the target behind c, reads each one's
// init and starts its reader.
func (f *fanout) open(ctx context.Context, c *Client, path string, n int) error {
	hc := &http.Client{
		Transport: &http.Transport{DialContext: loopbackDialer().DialContext},
		// A benchmark measures what the server answers, not where it points.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	opts := &websocket.DialOptions{HTTPClient: hc, CompressionMode: websocket.CompressionDisabled}
	if c.auth != "" {
		opts.HTTPHeader = http.Header{"Authorization": {c.auth}}
	}
	f.conns = make([]*websocket.Conn, n)
	f.clients = make([]fanoutClient, n)
	errs := make([]error, fanoutDialers)
	var next atomic.Int64
	var wg sync.WaitGroup
	for d := range fanoutDialers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || errs[d] != nil {
					return
				}
				errs[d] = f.dial(ctx, i, c.base+path, opts)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("open %d WebSockets on %s: %w", n, path, err)
	}
	for i, conn := range f.conns {
		f.wg.Go(func() { f.read(i, conn) })
	}
	return nil
}

// dial opens socket i and reads its init.
func (f *fanout) dial(ctx context.Context, i int, u string, opts *websocket.DialOptions) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, u, opts)
	if err != nil {
		return fmt.Errorf("socket %d: %w", i, err)
	}
	conn.SetReadLimit(8 << 20)
	f.conns[i] = conn // closed by f.close from now on
	_, data, err := conn.Read(ctx)
	if err != nil {
		return fmt.Errorf("socket %d: read init: %w", i, err)
	}
	var m struct {
		Type    string `json:"type"`
		Version int64  `json:"version"`
	}
	if err := json.Unmarshal(data, &m); err != nil || m.Type != "init" {
		return fmt.Errorf("socket %d: first message is not an init: %.200s", i, data)
	}
	f.clients[i].last = m.Version
	return nil
}

// read records every edit socket i receives until it closes.
func (f *fanout) read(i int, conn *websocket.Conn) {
	cl := &f.clients[i]
	// No cancellable context: a thousand readers registering on one would
	// contend on its lock. Closing the socket ends the read.
	ctx := context.Background()
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			if !f.closing.Load() {
				f.fail(fmt.Errorf("socket %d: %w", i, err))
			}
			return
		}
		var m struct {
			Type    string `json:"type"`
			Version int64  `json:"version"`
			Message string `json:"message"`
		}
		if err := json.Unmarshal(data, &m); err != nil {
			f.fail(fmt.Errorf("socket %d: bad message %.200q: %w", i, data, err))
			return
		}
		switch m.Type {
		case "edit":
		case "error":
			f.fail(fmt.Errorf("socket %d: server sent an error: %s", i, m.Message))
			return
		default:
			continue // nothing else is meant for a socket that only reads
		}
		if m.Version <= cl.last {
			f.fail(fmt.Errorf("socket %d: version %d after %d", i, m.Version, cl.last))
			return
		}
		cl.edits++
		cl.last = m.Version
		f.mu.Lock()
		d := f.entry(m.Version)
		d.got++
		if d.got == len(f.conns) {
			close(d.done)
		}
		f.mu.Unlock()
	}
}

// fail marks the run broken: every op waiting or to come fails with err.
func (f *fanout) fail(err error) {
	f.breakOnce.Do(func() {
		f.brokenErr = err
		close(f.broken)
	})
}

// wait returns when every socket has received version v, or with an error
// if a socket failed, FanoutWait passed or ctx ended.
func (f *fanout) wait(ctx context.Context, v int64) error {
	f.mu.Lock()
	d := f.entry(v)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.pending, v)
		f.mu.Unlock()
	}()
	timer := time.NewTimer(FanoutWait)
	defer timer.Stop()
	select {
	case <-d.done:
		return nil
	case <-f.broken:
		return fmt.Errorf("docs-fanout: %w", f.brokenErr)
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		f.mu.Lock()
		got := d.got
		f.mu.Unlock()
		return fmt.Errorf("docs-fanout: version %d reached %d of %d sockets within %v", v, got, len(f.conns), FanoutWait)
	}
}

// close closes every socket and waits for the readers.
func (f *fanout) close() {
	f.closing.Store(true)
	for _, c := range f.conns {
		if c != nil {
			c.CloseNow()
		}
	}
	f.wg.Wait()
}
