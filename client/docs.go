package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/coder/websocket"
)

// Doc is a collaborative document.
type Doc struct {
	Content string
	Version int64 // 0 for a document never written
}

// GetDoc returns the document id: GET /v1/docs/{id}. A new document is
// "" at version 0. Retried after any retryable failure (a read).
func (c *Client) GetDoc(ctx context.Context, id string) (*Doc, error) {
	p, err := seg("id", id)
	if err != nil {
		return nil, err
	}
	var out struct {
		Content string `json:"content"`
		Version int64  `json:"version"`
	}
	r := &request{method: http.MethodGet, path: "/v1/docs/" + p, safety: idempotent}
	if err := c.call(ctx, r, http.StatusOK, &out); err != nil {
		return nil, err
	}
	return &Doc{Content: out.Content, Version: out.Version}, nil
}

// PutDoc replaces the content of document id, whatever its version, and
// returns the new version: PUT /v1/docs/{id}. Every socket of the
// document receives the edit. Content over 1 MiB is ErrInvalidArgument.
//
// Retries: after a 503 overloaded/unavailable or a failed dial only. A
// connection error once the request may have been sent is returned (with
// ErrUnknownOutcome), never retried: an unconditional write sent twice
// could overwrite an edit another client made in between, and is
// broadcast twice. Use PutDocIf, which is retried.
func (c *Client) PutDoc(ctx context.Context, id, content string) (int64, error) {
	return c.putDoc(ctx, id, content, nil)
}

// PutDocIf replaces the content of document id if its version is still
// baseVersion, and returns the new version: PUT /v1/docs/{id} with
// base_version. A stale baseVersion is ErrConflict.
//
// Retries: also after ambiguous connection errors: at most one write
// with a given base version can succeed, so a retry cannot write twice.
// If the lost attempt did write, the retry answers ErrConflict marked
// with ErrUnknownOutcome: GetDoc tells whether the content is the one
// sent.
func (c *Client) PutDocIf(ctx context.Context, id, content string, baseVersion int64) (int64, error) {
	return c.putDoc(ctx, id, content, &baseVersion)
}

func (c *Client) putDoc(ctx context.Context, id, content string, base *int64) (int64, error) {
	p, err := seg("id", id)
	if err != nil {
		return 0, err
	}
	body := struct {
		Content     string `json:"content"`
		BaseVersion *int64 `json:"base_version,omitempty"`
	}{content, base}
	safe := once
	if base != nil {
		safe = idempotent
	}
	var out struct {
		Version int64 `json:"version"`
	}
	r := &request{method: http.MethodPut, path: "/v1/docs/" + p, safety: safe, body: body}
	if err := c.call(ctx, r, http.StatusOK, &out); err != nil {
		return 0, err
	}
	return out.Version, nil
}

// Message types of the documents' WebSocket protocol (api.md).
const (
	MsgInit     = "init"     // server → client, first: Content, Version
	MsgEdit     = "edit"     // another socket's edit: Content, Version
	MsgAck      = "ack"      // this socket's edit is stored: Version
	MsgConflict = "conflict" // this socket's base version was stale: current Content, Version
	MsgError    = "error"    // this socket sent something invalid: Message
)

// DocMessage is a message from the server on a document's socket.
type DocMessage struct {
	Type    string `json:"type"`
	Content string `json:"content,omitempty"`
	Version int64  `json:"version,omitempty"`
	Message string `json:"message,omitempty"`
}

// MaxDocMessage is the read limit of a document socket: 1 MiB of content,
// escaped in JSON (up to 6 bytes per byte), with room to spare.
const MaxDocMessage = 7 << 20

// DocConn is a WebSocket connection to a document. Read from one
// goroutine at a time; Edit and EditIf may be called concurrently with
// Read and with each other.
type DocConn struct {
	// Init is the server's first message: the document's content and
	// version when the socket connected.
	Init DocMessage
	conn *websocket.Conn
}

// DialDoc opens a WebSocket to document id (GET /v1/docs/{id} with
// Upgrade: websocket) and reads its init message. A handshake refused
// by the server is an *Error.
//
// Retries: the handshake is a GET, so also after ambiguous connection
// errors, and after 503 overloaded/unavailable. An open connection is
// never re-established by the client: after a read or write error, dial
// again and take the new Init as the base.
func (c *Client) DialDoc(ctx context.Context, id string) (*DocConn, error) {
	p, err := seg("id", id)
	if err != nil {
		return nil, err
	}
	u := "ws" + strings.TrimPrefix(c.base, "http") + "/v1/docs/" + p
	opts := &websocket.DialOptions{HTTPClient: c.HTTPClient, HTTPHeader: http.Header{}}
	if c.Token != "" {
		opts.HTTPHeader.Set("Authorization", "Bearer "+c.Token)
	}
	r := &request{method: http.MethodGet, path: "/v1/docs/" + p, safety: idempotent}
	var conn *websocket.Conn
	resp, err := c.retry(ctx, r, func() (*response, error) {
		ws, hr, err := websocket.Dial(ctx, u, opts)
		if err == nil {
			conn = ws
			return &response{req: r, status: hr.StatusCode, header: hr.Header}, nil
		}
		if hr == nil || hr.StatusCode == http.StatusSwitchingProtocols {
			return nil, err
		}
		var b []byte
		if hr.Body != nil {
			b, _ = io.ReadAll(hr.Body)
		}
		return &response{req: r, status: hr.StatusCode, header: hr.Header, body: b}, nil
	})
	if err != nil {
		return nil, err
	}
	if conn == nil {
		return nil, resp.err()
	}
	conn.SetReadLimit(MaxDocMessage)
	d := &DocConn{conn: conn}
	if d.Init, err = d.Read(ctx); err != nil {
		conn.CloseNow()
		return nil, err
	}
	if d.Init.Type != MsgInit {
		conn.CloseNow()
		return nil, fmt.Errorf("durable: document %s: first message is %q, want init", id, d.Init.Type)
	}
	return d, nil
}

// Read returns the next message from the server: MsgAck, MsgConflict or
// MsgError in answer to this socket's edits, MsgEdit for other sockets'
// edits (types this client does not know are returned as they are).
func (d *DocConn) Read(ctx context.Context) (DocMessage, error) {
	typ, b, err := d.conn.Read(ctx)
	if err != nil {
		return DocMessage{}, err
	}
	if typ != websocket.MessageText {
		return DocMessage{}, errors.New("durable: document socket: binary message")
	}
	var m DocMessage
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&m); err != nil {
		return DocMessage{}, fmt.Errorf("durable: document socket: bad message %.100q: %w", b, err)
	}
	return m, nil
}

// Edit sends new content to store whatever the document's version; the
// server answers MsgAck (read it with Read).
func (d *DocConn) Edit(ctx context.Context, content string) error {
	return d.write(ctx, struct {
		Type    string `json:"type"`
		Content string `json:"content"`
	}{MsgEdit, content})
}

// EditIf sends new content to store if the document is still at
// baseVersion; the server answers MsgAck, or MsgConflict with the current
// content and version.
func (d *DocConn) EditIf(ctx context.Context, content string, baseVersion int64) error {
	return d.write(ctx, struct {
		Type        string `json:"type"`
		Content     string `json:"content"`
		BaseVersion int64  `json:"base_version"`
	}{MsgEdit, content, baseVersion})
}

func (d *DocConn) write(ctx context.Context, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return d.conn.Write(ctx, websocket.MessageText, b)
}

// Close closes the connection normally.
func (d *DocConn) Close() error {
	return d.conn.Close(websocket.StatusNormalClosure, "")
}
