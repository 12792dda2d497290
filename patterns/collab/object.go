package collab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/durableobjects/durable"
)

// Storage keys of a document. Both are written by every edit, in one
// transaction; neither exists until the first edit.
const (
	keyContent = "content" // the content's bytes, as they are
	keyVersion = "version" // decimal
)

// object is one document. It keeps nothing in memory: content and version
// are in storage and the sockets are the runtime's, so eviction loses
// nothing and every event starts from storage.
type object struct {
	st *durable.State
}

type putArgs struct {
	Content     string `json:"content"`
	BaseVersion *int64 `json:"base_version,omitempty"`
}

// Get returns the document.
func (o *object) Get(ctx context.Context) (Document, error) {
	return o.load()
}

// Info reports the document's sockets and auto-response.
func (o *object) Info(ctx context.Context) (Info, error) {
	_, _, auto := o.st.WebSocketAutoResponse()
	return Info{Sockets: len(o.st.WebSockets("")), AutoResponse: auto}, nil
}

// Put stores an edit made over HTTP and broadcasts it to every socket.
func (o *object) Put(ctx context.Context, a putArgs) (int64, error) {
	if len(a.Content) > MaxContent {
		return 0, tooLarge(len(a.Content))
	}
	v, err := o.version()
	if err != nil {
		return 0, err
	}
	if a.BaseVersion != nil && *a.BaseVersion != v {
		return 0, conflict(*a.BaseVersion, v)
	}
	if err := o.save(a.Content, v+1); err != nil {
		return 0, err
	}
	o.broadcast(a.Content, v+1, nil)
	return v + 1, nil
}

func conflict(base, current int64) error {
	return fmt.Errorf("%w: base_version is %d, the document is at version %d", ErrConflict, base, current)
}

// ServeHTTP accepts a WebSocket and sends it the document (the init
// message), which leaves before anything sent to the socket by later events.
func (o *object) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d, err := o.load()
	if err != nil {
		o.st.Logger().Error("reading document failed", "err", err)
		writeAPIError(w, http.StatusInternalServerError, "internal", "internal error")
		return
	}
	ws, err := o.st.AcceptWebSocket(w, r)
	switch {
	case err == nil:
	case errors.Is(err, durable.ErrNotWebSocket):
		writeAPIError(w, http.StatusBadRequest, "invalid_argument", "a WebSocket upgrade request is required")
		return
	case errors.Is(err, durable.ErrTooManySockets):
		w.Header().Set("Retry-After", "1")
		writeAPIError(w, http.StatusServiceUnavailable, "overloaded", "too many WebSockets on this document")
		return
	default:
		// The runtime is shutting down (or a bug): refuse without effect.
		w.Header().Set("Retry-After", "1")
		writeAPIError(w, http.StatusServiceUnavailable, "unavailable", "cannot accept the WebSocket: "+err.Error())
		return
	}
	// The pair lives in the runtime's registry with the sockets: set it on
	// every accept, since WebSocketClose clears it with the last socket.
	if err := o.st.SetWebSocketAutoResponse(PingMessage, PongMessage); err != nil {
		o.st.Logger().Error("setting the ping auto-response failed", "err", err)
	}
	ws.Send(durable.MessageText, encode(initMsg{Type: "init", Content: d.Content, Version: d.Version}))
}

// WebSocketMessage runs one client message: an edit (or a ping that did
// not match PingMessage byte for byte). Every problem with the message is
// answered with an error message; the socket stays open.
func (o *object) WebSocketMessage(ctx context.Context, ws *durable.WebSocket, _ durable.MessageType, data []byte) error {
	m, err := parseMessage(data)
	if err != nil {
		sendError(ws, err.Error())
		return nil
	}
	if m.Type == "ping" {
		ws.SendText(PongMessage)
		return nil
	}
	v, err := o.version()
	if err != nil {
		sendError(ws, "internal error")
		return err
	}
	if m.BaseVersion != nil && *m.BaseVersion != v {
		d, err := o.load()
		if err != nil {
			sendError(ws, "internal error")
			return err
		}
		ws.Send(durable.MessageText, encode(initMsg{Type: "conflict", Content: d.Content, Version: d.Version}))
		return nil
	}
	if err := o.save(m.Content, v+1); err != nil {
		sendError(ws, "internal error")
		return err
	}
	ws.Send(durable.MessageText, encode(ackMsg{Type: "ack", Version: v + 1}))
	o.broadcast(m.Content, v+1, ws)
	return nil
}

// WebSocketClose forgets the ping auto-response with the document's last
// socket, so the runtime keeps nothing for a document nobody is connected to.
func (o *object) WebSocketClose(ctx context.Context, ws *durable.WebSocket, code int, reason string, clean bool) error {
	if len(o.st.WebSockets("")) == 0 {
		return o.st.SetWebSocketAutoResponse("", "")
	}
	return nil
}

// broadcast sends an edit to every socket of the document but except.
func (o *object) broadcast(content string, version int64, except *durable.WebSocket) {
	socks := o.st.WebSockets("")
	if len(socks) == 0 || len(socks) == 1 && except != nil {
		return
	}
	msg := encode(initMsg{Type: "edit", Content: content, Version: version})
	for _, ws := range socks {
		if except == nil || ws.ID() != except.ID() {
			ws.Send(durable.MessageText, msg) // a socket closing meanwhile just misses it
		}
	}
}

// load reads the document.
func (o *object) load() (Document, error) {
	v, err := o.version()
	if err != nil || v == 0 {
		return Document{}, err
	}
	b, _, err := o.st.Storage().Get(keyContent)
	if err != nil {
		return Document{}, err
	}
	return Document{Content: string(b), Version: v}, nil
}

// version reads the document's version (0 if it was never written).
func (o *object) version() (int64, error) {
	b, ok, err := o.st.Storage().Get(keyVersion)
	if err != nil || !ok {
		return 0, err
	}
	v, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("collab: stored version %q: %w", b, err)
	}
	return v, nil
}

// save stores content at version, both or neither.
func (o *object) save(content string, version int64) error {
	return o.st.Storage().PutMany(map[string][]byte{
		keyContent: []byte(content),
		keyVersion: strconv.AppendInt(nil, version, 10),
	})
}

// Messages from the server. initMsg is also the conflict and edit message.
type (
	initMsg struct {
		Type    string `json:"type"`
		Content string `json:"content"`
		Version int64  `json:"version"`
	}
	ackMsg struct {
		Type    string `json:"type"`
		Version int64  `json:"version"`
	}
	errorMsg struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	}
)

func sendError(ws *durable.WebSocket, msg string) {
	ws.Send(durable.MessageText, encode(errorMsg{Type: "error", Message: msg}))
}

// encode marshals a message without escaping <, > and & (which would make
// HTML content up to 6 times longer on the wire).
func encode(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(err) // the message types always encode
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// writeAPIError answers an HTTP request with an error in api.md's form.
func writeAPIError(w http.ResponseWriter, status int, code, message string) {
	type detail struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(encode(struct {
		Error detail `json:"error"`
	}{detail{code, message}}), '\n'))
}
