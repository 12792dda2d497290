package durable

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
	"github.com/durableobjects/durable/internal/actor"
	"github.com/durableobjects/durable/internal/hibernate"
)

// WebSocket limits and defaults.
const (
	DefaultMaxWebSocketMessage   = 32 << 20 // bytes in one received message
	DefaultMaxWebSockets         = 32_768   // sockets per object
	DefaultWebSocketSendQueue    = 1_024    // messages queued per socket
	DefaultWebSocketSendBytes    = 8 << 20  // bytes queued per socket
	DefaultWebSocketWriteTimeout = 10 * time.Second
	MaxWebSocketTags             = 10
	MaxWebSocketTagSize          = 256
	MaxWebSocketAttachment       = 16 << 10
	MaxAutoResponseSize          = 2048
)

// WebSocket errors.
var (
	ErrNotWebSocket   = errors.New("durable: not a WebSocket upgrade request")
	ErrTooManySockets = hibernate.ErrTooManySockets
	ErrSocketClosed   = hibernate.ErrClosed
	ErrBadTags        = errors.New("durable: invalid WebSocket tags")
	ErrBadClose       = errors.New("durable: invalid WebSocket close")
	// ErrForbiddenOrigin is Stub.Handle's error for a WebSocket upgrade
	// whose Origin is neither the request's host nor allowed by
	// Runtime.WebSocketOriginPatterns; the object's handler did not run.
	ErrForbiddenOrigin = errors.New("durable: WebSocket origin not allowed")
)

// MessageType is the type of a WebSocket message.
type MessageType int

// WebSocket message types.
const (
	MessageText   MessageType = MessageType(websocket.MessageText)
	MessageBinary MessageType = MessageType(websocket.MessageBinary)
)

// WebSocketHandler is implemented by objects that accept WebSockets. Each
// message is one event of the object; if the object was evicted meanwhile,
// it is constructed again first.
type WebSocketHandler interface {
	WebSocketMessage(ctx context.Context, ws *WebSocket, typ MessageType, data []byte) error
}

// WebSocketCloseHandler is told when a socket closes: code and reason from
// the client's close frame; clean is false when the connection just ended.
type WebSocketCloseHandler interface {
	WebSocketClose(ctx context.Context, ws *WebSocket, code int, reason string, clean bool) error
}

// WebSocketErrorHandler is told about a socket's protocol or I/O error
// (a close event follows).
type WebSocketErrorHandler interface {
	WebSocketError(ctx context.Context, ws *WebSocket, err error) error
}

// WebSocket is a connection accepted by an object. The runtime holds the
// connection, not the object: it stays open while the object is evicted
// (hibernation), and the object finds it again with State.WebSockets.
type WebSocket struct {
	s *hibernate.Socket
	o *object
}

// ID identifies the socket (unique in the runtime); compare IDs, not pointers.
func (ws *WebSocket) ID() string { return ws.s.ID() }

// Tags returns the tags the socket was accepted with.
func (ws *WebSocket) Tags() []string { return ws.s.Tags() }

// Attachment returns the value attached with SetAttachment, or nil.
func (ws *WebSocket) Attachment() []byte { return ws.s.Attachment() }

// SetAttachment attaches a small value (at most MaxWebSocketAttachment
// bytes) to the socket. It survives the object's eviction, not a restart.
func (ws *WebSocket) SetAttachment(v []byte) error {
	if len(v) > MaxWebSocketAttachment {
		return fmt.Errorf("%w: attachment of %d bytes, over %d", ErrTooLarge, len(v), MaxWebSocketAttachment)
	}
	ws.s.SetAttachment(v)
	return nil
}

// LastAutoResponse returns when the runtime last answered the object's
// automatic response on this socket.
func (ws *WebSocket) LastAutoResponse() (time.Time, bool) {
	ms := ws.s.LastAutoResponse()
	return time.UnixMilli(ms), ms != 0
}

// Send sends a message. Like every result of an event it leaves only once
// the event's writes are durable, and not at all if the event fails. A
// client that does not read is disconnected (1008) rather than buffered
// without bound. A socket that is closed, or that the running event closed,
// takes no message: ErrSocketClosed.
func (ws *WebSocket) Send(typ MessageType, data []byte) error {
	if typ != MessageText && typ != MessageBinary {
		return fmt.Errorf("durable: invalid message type %d", typ)
	}
	if ws.s.IsClosed() || ws.closedByThisEvent() {
		return ErrSocketClosed
	}
	data = slices.Clone(data)
	ws.o.holdOutput(func() { ws.s.Send(websocket.MessageType(typ), data) })
	return nil
}

// SendText sends a text message.
func (ws *WebSocket) SendText(s string) error { return ws.Send(MessageText, []byte(s)) }

// Close closes the socket with code and reason, after the messages sent
// before it (and through the output gate, like them). The code must be one
// an endpoint may send (RFC 6455: 1000–1003, 1007–1014, or 3000–4999 for
// applications) and the reason valid UTF-8 of at most 123 bytes, as fits
// a close frame; anything else fails with ErrBadClose and closes nothing.
func (ws *WebSocket) Close(code int, reason string) error {
	switch {
	case !(code >= 1000 && code <= 1003 || code >= 1007 && code <= 1014 || code >= 3000 && code <= 4999):
		return fmt.Errorf("%w: code %d cannot be sent", ErrBadClose, code)
	case len(reason) > maxCloseReason:
		return fmt.Errorf("%w: reason of %d bytes, over %d", ErrBadClose, len(reason), maxCloseReason)
	case !utf8.ValidString(reason):
		return fmt.Errorf("%w: reason is not valid UTF-8", ErrBadClose)
	}
	if ev := ws.o.actor.Current(); ev != nil {
		ev.Value.(*eventInfo).close(ws.s)
	}
	ws.o.holdOutput(func() { ws.s.Close(websocket.StatusCode(code), reason) })
	return nil
}

// closedByThisEvent reports whether the event running closed the socket:
// its close waits for the event's writes with its sends, but the socket
// takes no more messages from then on.
func (ws *WebSocket) closedByThisEvent() bool {
	ev := ws.o.actor.Current()
	return ev != nil && ev.Value.(*eventInfo).closed(ws.s)
}

// maxCloseReason is the longest reason a close frame holds: 125 bytes of
// payload less the 2-byte code.
const maxCloseReason = 123

func (o *object) socketKey() hibernate.Key { return hibernate.Key{NS: o.ns.name, ID: o.raw} }

// AcceptWebSocket accepts the WebSocket upgrade r inside the object's HTTP
// handler (w must be the handler's ResponseWriter). The runtime completes
// the upgrade after the event, once its writes are durable; messages sent
// meanwhile are delivered first. Tags (at most 10 distinct ones, each of 1
// to 256 bytes; repeats count once) select sockets in WebSockets.
func (s *State) AcceptWebSocket(w http.ResponseWriter, r *http.Request, tags ...string) (*WebSocket, error) {
	rec, ok := w.(*recorder)
	if !ok {
		return nil, errors.New("durable: AcceptWebSocket needs the ResponseWriter of the object's ServeHTTP")
	}
	if rec.socket != nil {
		return nil, errors.New("durable: WebSocket already accepted for this request")
	}
	if !isUpgrade(r) {
		return nil, ErrNotWebSocket
	}
	var uniq []string
	for _, t := range tags {
		switch {
		case t == "":
			return nil, fmt.Errorf("%w: an empty tag (WebSockets(\"\") means every socket)", ErrBadTags)
		case len(t) > MaxWebSocketTagSize:
			return nil, fmt.Errorf("%w: tag of %d bytes, at most %d", ErrBadTags, len(t), MaxWebSocketTagSize)
		case slices.Contains(uniq, t):
			continue
		case len(uniq) == MaxWebSocketTags:
			return nil, fmt.Errorf("%w: more than %d distinct tags", ErrBadTags, MaxWebSocketTags)
		}
		uniq = append(uniq, t)
	}
	sock, err := s.o.rt.sockets.Add(s.o.socketKey(), uniq)
	if err != nil {
		return nil, err
	}
	rec.socket = sock
	return &WebSocket{s: sock, o: s.o}, nil
}

// WebSockets returns the object's open sockets, or those with tag if tag
// is not "".
func (s *State) WebSockets(tag string) []*WebSocket {
	socks := s.o.rt.sockets.List(s.o.socketKey(), tag)
	out := make([]*WebSocket, len(socks))
	for i, sk := range socks {
		out[i] = &WebSocket{s: sk, o: s.o}
	}
	return out
}

// SetWebSocketAutoResponse makes the runtime answer every text message
// equal to request with response, on all of the object's sockets, without
// waking the object (so it can stay evicted). An empty request clears it.
func (s *State) SetWebSocketAutoResponse(request, response string) error {
	if len(request) > MaxAutoResponseSize || len(response) > MaxAutoResponseSize {
		return fmt.Errorf("%w: auto-response strings are at most %d bytes", ErrTooLarge, MaxAutoResponseSize)
	}
	s.o.rt.sockets.SetAutoResponse(s.o.socketKey(), request, response)
	return nil
}

// WebSocketAutoResponse returns the object's automatic response pair.
func (s *State) WebSocketAutoResponse() (request, response string, ok bool) {
	return s.o.rt.sockets.AutoResponse(s.o.socketKey())
}

// checkOrigin refuses a WebSocket upgrade from a browser page of another
// origin, by the rule websocket.Accept applies with the same patterns (an
// Origin whose host is the request's Host, or that matches a pattern, with
// path.Match, case-insensitively, against the origin's host, or its
// scheme://host if the pattern has a scheme). Checked before the object
// runs, so a refused upgrade costs the object nothing.
func checkOrigin(r *http.Request, patterns []string) error {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil // not a browser
	}
	u, err := url.Parse(origin)
	if err != nil {
		return fmt.Errorf("%w: Origin %q is not a URL", ErrForbiddenOrigin, origin)
	}
	if strings.EqualFold(r.Host, u.Host) {
		return nil
	}
	for _, p := range patterns {
		target := u.Host
		if strings.Contains(p, "://") {
			target = u.Scheme + "://" + u.Host
		}
		ok, err := path.Match(strings.ToLower(p), strings.ToLower(target))
		if err != nil {
			// websocket.Accept refuses the upgrade too.
			return fmt.Errorf("%w: bad origin pattern %q: %v", ErrForbiddenOrigin, p, err)
		}
		if ok {
			return nil
		}
	}
	return fmt.Errorf("%w: origin %q may not open WebSockets on host %q", ErrForbiddenOrigin, u.Host, r.Host)
}

func isUpgrade(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket") &&
		strings.Contains(strings.ToLower(r.Header.Get("Connection")), "upgrade")
}

// deliverSocket turns a socket event into an event of its object. It runs
// on the socket's reader goroutine; when the object's queue is full it
// waits, which stops reading from that client (TCP backpressure).
func (rt *Runtime) deliverSocket(sock *hibernate.Socket, ev hibernate.Event) <-chan error {
	k := sock.Key()
	ns, ok := rt.Namespace(k.NS)
	if !ok {
		sock.Close(websocket.StatusInternalError, "no such class")
		return nil
	}
	backoff := time.Millisecond
	for {
		o, err := rt.lookup(ns, k.ID)
		if err != nil {
			sock.Close(websocket.StatusGoingAway, "server shutting down")
			return nil
		}
		done, err := o.submit(context.Background(), ev.Kind != hibernate.Message, func(ctx context.Context, o *object) {
			o.dispatchSocket(ctx, sock, ev)
		})
		switch {
		case err == nil:
			return done
		case errors.Is(err, actor.ErrEvicted):
			continue
		case errors.Is(err, ErrOverloaded):
			time.Sleep(backoff)
			backoff = min(2*backoff, 100*time.Millisecond)
		default:
			rt.Logger.Error("WebSocket event lost", "class", k.NS, "err", err)
			return nil
		}
	}
}

// dispatchSocket runs a socket event in the object's gate.
func (o *object) dispatchSocket(ctx context.Context, sock *hibernate.Socket, ev hibernate.Event) {
	ws := &WebSocket{s: sock, o: o}
	var err error
	switch ev.Kind {
	case hibernate.Message:
		h, ok := o.inst.(WebSocketHandler)
		if !ok {
			o.state.Logger().Error("WebSocket message dropped: object has no WebSocketMessage method")
			ws.Close(int(websocket.StatusInternalError), "")
			return
		}
		err = h.WebSocketMessage(ctx, ws, MessageType(ev.Type), ev.Data)
	case hibernate.Close:
		if h, ok := o.inst.(WebSocketCloseHandler); ok {
			err = h.WebSocketClose(ctx, ws, ev.Code, ev.Reason, ev.Clean)
		}
	case hibernate.Error:
		if h, ok := o.inst.(WebSocketErrorHandler); ok {
			err = h.WebSocketError(ctx, ws, ev.Err)
		}
	}
	if err != nil {
		o.state.Logger().Warn("WebSocket handler failed", "socket", ws.ID(), "err", err)
	}
}
