package hibernate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"

	"github.com/coder/websocket"
)

// ID returns the socket's identifier, unique in the registry.
func (s *Socket) ID() string { return strconv.FormatUint(s.id, 10) }

// Key returns the object the socket belongs to.
func (s *Socket) Key() Key { return s.key }

// Tags returns the tags the socket was accepted with.
func (s *Socket) Tags() []string { return slices.Clone(s.tags) }

// Attachment returns the value attached to the socket.
func (s *Socket) Attachment() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.attachment)
}

// SetAttachment attaches v to the socket; it survives the object's eviction.
func (s *Socket) SetAttachment(v []byte) {
	s.mu.Lock()
	s.attachment = slices.Clone(v)
	s.mu.Unlock()
}

// LastAutoResponse returns when the registry last answered the automatic
// response on this socket (ms since the epoch), or 0.
func (s *Socket) LastAutoResponse() int64 { return s.autoAt.Load() }

func (s *Socket) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Send queues a message. A socket whose queue is full is closed with 1008
// (its client is not reading) and the message is dropped.
func (s *Socket) Send(typ websocket.MessageType, data []byte) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	cfg := &s.reg.cfg
	if len(s.queue) > 0 && (len(s.queue) >= cfg.SendQueue || s.queued+len(data) > cfg.SendQueueBytes) {
		s.mu.Unlock()
		s.Close(websocket.StatusPolicyViolation, "send queue full: client not reading")
		return fmt.Errorf("%w: send queue full", ErrClosed)
	}
	s.queue = append(s.queue, outMsg{typ: typ, data: data})
	s.queued += len(data)
	start := s.conn != nil && !s.writing
	if start {
		s.writing = true
	}
	s.mu.Unlock()
	if start {
		s.reg.wg.Add(1)
		go s.write()
	}
	return nil
}

// Close queues a close frame after the messages already queued; no more
// messages are accepted.
func (s *Socket) Close(code websocket.StatusCode, reason string) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.queue = append(s.queue, outMsg{close: true, code: code, why: reason})
	start := s.conn != nil && !s.writing
	if start {
		s.writing = true
	}
	s.mu.Unlock()
	if start {
		s.reg.wg.Add(1)
		go s.write()
	}
}

// write drains the queue; it runs only while there is something to send,
// so an idle socket costs no writer goroutine.
func (s *Socket) write() {
	defer s.reg.wg.Done()
	for {
		s.mu.Lock()
		if len(s.queue) == 0 {
			s.writing = false
			s.mu.Unlock()
			return
		}
		m := s.queue[0]
		s.queue[0] = outMsg{}
		s.queue = s.queue[1:]
		s.queued -= len(m.data)
		conn := s.conn
		s.mu.Unlock()
		if m.close {
			conn.Close(m.code, m.why)
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.reg.cfg.WriteTimeout)
		err := conn.Write(ctx, m.typ, m.data)
		cancel()
		if err != nil {
			s.mu.Lock()
			s.closed = true
			s.queue, s.queued = nil, 0
			s.mu.Unlock()
			if errors.Is(err, context.DeadlineExceeded) {
				conn.Close(websocket.StatusPolicyViolation, "write timed out: client not reading")
			} else {
				conn.CloseNow()
			}
		}
	}
}

// Flow control: a socket's reader stops reading (and TCP pushes back on
// the client) while this much of what it delivered is still unprocessed.
const (
	readWindowMessages = 16
	readWindowBytes    = 1 << 20 // one bigger message is always allowed
)

// read delivers the socket's messages until it closes. It keeps at most a
// window of them in flight, so a client sending faster than its object
// handles never makes the server hold more than the window.
func (s *Socket) read() {
	defer s.reg.wg.Done()
	r := s.reg
	type flight struct {
		done <-chan error
		size int
	}
	var window []flight
	inFlight := 0
	for {
		for len(window) > 0 && (len(window) >= readWindowMessages || inFlight >= readWindowBytes) {
			<-window[0].done
			inFlight -= window[0].size
			window = window[1:]
		}
		typ, data, err := s.conn.Read(context.Background())
		if err != nil {
			s.ended(err)
			return
		}
		if typ == websocket.MessageText {
			if resp, ok := r.autoFor(s.key, data); ok {
				s.autoAt.Store(r.cfg.Now().UnixMilli())
				s.Send(websocket.MessageText, []byte(resp))
				continue
			}
		}
		if done := r.cfg.Deliver(s, Event{Kind: Message, Type: typ, Data: data}); done != nil {
			window = append(window, flight{done, len(data)})
			inFlight += len(data)
		}
	}
}

// ended reports how the socket ended and forgets it.
func (s *Socket) ended(err error) {
	r := s.reg
	r.Remove(s)
	var ce websocket.CloseError
	switch {
	case errors.As(err, &ce):
		r.cfg.Deliver(s, Event{Kind: Close, Code: int(ce.Code), Reason: ce.Reason, Clean: true})
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		r.cfg.Deliver(s, Event{Kind: Close, Code: int(websocket.StatusAbnormalClosure), Clean: false})
	default:
		code := websocket.CloseStatus(err)
		if code == -1 {
			code = websocket.StatusAbnormalClosure
		}
		r.cfg.Deliver(s, Event{Kind: Error, Err: err})
		r.cfg.Deliver(s, Event{Kind: Close, Code: int(code), Clean: false})
	}
	s.conn.CloseNow()
}

// IsClosed reports whether the socket is closed or closing.
func (s *Socket) IsClosed() bool { return s.isClosed() }
