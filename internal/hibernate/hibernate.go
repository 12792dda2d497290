// Package hibernate holds WebSocket connections on behalf of objects, so a
// socket stays open while its object is evicted from memory. The registry
// reads each socket (one goroutine per socket), answers the object's
// automatic response without waking it, hands every other message, close
// and error to the runtime as an event, and writes the object's sends
// through a bounded per-socket queue: a client that does not read is closed
// instead of growing memory, and never slows the others.
package hibernate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// Key names the object a socket belongs to.
type Key struct {
	NS string
	ID [32]byte
}

// Config configures a Registry.
type Config struct {
	MaxMessage     int64         // largest message read; bigger ones close the socket with 1009
	MaxSockets     int           // sockets per object
	SendQueue      int           // messages queued per socket before it is closed with 1008
	SendQueueBytes int           // bytes queued per socket (one message of any size always fits)
	WriteTimeout   time.Duration // a write taking longer closes the socket with 1008
	Now            func() time.Time
	// Deliver hands an event to the socket's object. Calls for one socket
	// come from one goroutine, in order; Deliver may block to slow that
	// socket's reader down. It returns a channel that yields once the
	// event is over (nil if it was not queued), for the reader's window.
	Deliver func(s *Socket, ev Event) <-chan error
	Logger  *slog.Logger
}

// Errors of the registry.
var (
	ErrTooManySockets = errors.New("too many WebSockets on this object")
	ErrClosed         = errors.New("WebSocket closed")
	ErrShutdown       = errors.New("server shutting down")
)

// EventKind says what happened on a socket.
type EventKind int

// Kinds of socket events.
const (
	Message EventKind = iota
	Close
	Error
)

// Event is something that happened on a socket.
type Event struct {
	Kind   EventKind
	Type   websocket.MessageType // Message
	Data   []byte                // Message
	Code   int                   // Close
	Reason string                // Close
	Clean  bool                  // Close: the client sent a close frame
	Err    error                 // Error
}

// Registry holds the sockets of every object.
type Registry struct {
	cfg Config

	mu       sync.Mutex
	groups   map[Key]*group
	shutdown bool
	nextID   uint64
	wg       sync.WaitGroup // readers and writers
}

type group struct {
	sockets         []*Socket
	autoReq, autoRe string
	hasAuto         bool
}

// New returns an empty registry.
func New(cfg Config) *Registry {
	return &Registry{cfg: cfg, groups: map[Key]*group{}}
}

// Socket is one connection.
type Socket struct {
	reg  *Registry
	key  Key
	id   uint64
	tags []string

	autoAt atomic.Int64 // ms of the last automatic response; 0 if none

	mu         sync.Mutex
	conn       *websocket.Conn // nil until Attach
	attachment []byte
	queue      []outMsg
	queued     int
	writing    bool
	closed     bool
	removed    bool
}

type outMsg struct {
	typ   websocket.MessageType
	data  []byte
	close bool // a close frame with code and reason
	code  websocket.StatusCode
	why   string
}

// Add registers a socket for key before its connection exists (the object
// accepts it inside an event; the upgrade happens once the event's writes
// are durable). Sends to it queue until Attach.
func (r *Registry) Add(key Key, tags []string) (*Socket, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.shutdown {
		return nil, ErrShutdown
	}
	g := r.groups[key]
	if g == nil {
		g = &group{}
		r.groups[key] = g
	}
	if len(g.sockets) >= r.cfg.MaxSockets {
		return nil, fmt.Errorf("%w (%d)", ErrTooManySockets, r.cfg.MaxSockets)
	}
	r.nextID++
	s := &Socket{reg: r, key: key, id: r.nextID, tags: slices.Clone(tags)}
	g.sockets = append(g.sockets, s)
	return s, nil
}

// Attach gives a registered socket its connection and starts reading it.
func (r *Registry) Attach(s *Socket, conn *websocket.Conn) {
	conn.SetReadLimit(r.cfg.MaxMessage)
	// The goroutines are counted under r.mu, where Shutdown marks the
	// registry shut before it waits for them: none is added to a Wait
	// that has begun.
	r.mu.Lock()
	shut := r.shutdown
	s.mu.Lock()
	s.conn = conn
	closed := s.closed || shut
	start := !closed && len(s.queue) > 0 && !s.writing
	if start {
		s.writing = true
	}
	s.mu.Unlock()
	if !closed {
		r.wg.Add(1)
		if start {
			r.wg.Add(1)
		}
	}
	r.mu.Unlock()
	if closed {
		conn.Close(websocket.StatusGoingAway, "")
		return
	}
	go s.read()
	if start {
		go s.write()
	}
}

// Remove forgets a socket (closed, or its upgrade failed).
func (r *Registry) Remove(s *Socket) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s.mu.Lock()
	s.removed, s.closed = true, true
	s.mu.Unlock()
	g := r.groups[s.key]
	if g == nil {
		return
	}
	g.sockets = slices.DeleteFunc(g.sockets, func(x *Socket) bool { return x == s })
	if len(g.sockets) == 0 && !g.hasAuto {
		delete(r.groups, s.key)
	}
}

// List returns the open sockets of key, or those with tag when tag != "".
func (r *Registry) List(key Key, tag string) []*Socket {
	r.mu.Lock()
	defer r.mu.Unlock()
	g := r.groups[key]
	if g == nil {
		return nil
	}
	out := make([]*Socket, 0, len(g.sockets))
	for _, s := range g.sockets {
		if tag == "" || slices.Contains(s.tags, tag) {
			if !s.isClosed() {
				out = append(out, s)
			}
		}
	}
	return out
}

// Count returns how many sockets the registry holds.
func (r *Registry) Count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, g := range r.groups {
		n += len(g.sockets)
	}
	return n
}

// SetAutoResponse sets key's automatic response: a text message equal to
// req is answered with resp by the registry, without waking the object.
// An empty req clears it.
func (r *Registry) SetAutoResponse(key Key, req, resp string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	g := r.groups[key]
	if g == nil {
		if req == "" {
			return
		}
		g = &group{}
		r.groups[key] = g
	}
	g.autoReq, g.autoRe, g.hasAuto = req, resp, req != ""
	if !g.hasAuto && len(g.sockets) == 0 {
		delete(r.groups, key)
	}
}

// AutoResponse returns key's automatic response pair.
func (r *Registry) AutoResponse(key Key) (req, resp string, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if g := r.groups[key]; g != nil && g.hasAuto {
		return g.autoReq, g.autoRe, true
	}
	return "", "", false
}

func (r *Registry) autoFor(key Key, msg []byte) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	g := r.groups[key]
	if g == nil || !g.hasAuto || g.autoReq != string(msg) {
		return "", false
	}
	return g.autoRe, true
}

// Shutdown refuses new sockets, lets each socket's queued sends drain (up
// to ctx), then closes every socket with 1001 and waits for the readers.
func (r *Registry) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	r.shutdown = true
	var all []*Socket
	for _, g := range r.groups {
		all = append(all, g.sockets...)
	}
	r.mu.Unlock()
	for _, s := range all {
		s.Close(websocket.StatusGoingAway, "server shutting down")
	}
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		for _, s := range all {
			s.mu.Lock()
			if s.conn != nil {
				s.conn.CloseNow()
			}
			s.mu.Unlock()
		}
		return ctx.Err()
	}
}
