package collab

import (
	"context"
	"fmt"
	"net/http"

	"github.com/durableobjects/durable"
)

// Class is the name the document objects are registered under.
const Class = "collab"

// MaxContent is the largest document content, in bytes (api.md: content
// over 1 MiB is refused).
const MaxContent = 1 << 20

// The keep-alive pair answered by the runtime without waking the document:
// a text message exactly equal to PingMessage gets PongMessage back.
const (
	PingMessage = `{"type":"ping"}`
	PongMessage = `{"type":"pong"}`
)

// Client reads, writes and connects to documents by id. Each id is one
// object of the class Class. A Client is safe for concurrent use.
type Client struct {
	ns *durable.Namespace
}

// Register registers the document class on rt (which must not be open yet)
// and returns a client for it.
func Register(rt *durable.Runtime) (*Client, error) {
	ns, err := rt.Register(Class, func(st *durable.State) any { return &object{st: st} })
	if err != nil {
		return nil, err
	}
	return &Client{ns: ns}, nil
}

// Document is a document's content and version. Version counts the edits
// stored: 0 for a document never written, and one more with every edit.
type Document struct {
	Content string `json:"content"`
	Version int64  `json:"version"`
}

// Get returns the document id.
func (c *Client) Get(ctx context.Context, id string) (Document, error) {
	d, err := durable.Call[Document](ctx, c.ns.GetByName(id), "Get", nil)
	return d, wrap(id, err)
}

// Put stores content as the document's next version and sends it to every
// socket of the document. If baseVersion is not nil and is not the
// document's version, nothing is stored and Put fails with ErrConflict.
// Content over MaxContent bytes fails with ErrTooLarge.
func (c *Client) Put(ctx context.Context, id, content string, baseVersion *int64) (int64, error) {
	if len(content) > MaxContent {
		return 0, tooLarge(len(content))
	}
	v, err := durable.Call[int64](ctx, c.ns.GetByName(id), "Put", putArgs{Content: content, BaseVersion: baseVersion})
	return v, wrap(id, err)
}

// Info describes a document's connections.
type Info struct {
	// Sockets counts the document's open WebSockets.
	Sockets int `json:"sockets"`
	// AutoResponse reports whether the runtime answers PingMessage for the
	// document (set while it has sockets).
	AutoResponse bool `json:"auto_response"`
}

// Info returns what the runtime holds for the document id. It activates
// the document, if it was evicted.
func (c *Client) Info(ctx context.Context, id string) (Info, error) {
	i, err := durable.Call[Info](ctx, c.ns.GetByName(id), "Info", nil)
	return i, wrap(id, err)
}

// Connect serves r, a WebSocket upgrade request, from the document id: the
// document accepts the socket and sends it the init message, and the
// upgrade completes once that is settled. Connect returns an error, having
// written nothing, when the document could not run the request
// (durable.ErrOverloaded, durable.ErrClosed); otherwise it has answered r,
// with 101 or, if the socket was refused, an error status.
func (c *Client) Connect(w http.ResponseWriter, r *http.Request, id string) error {
	return wrap(id, c.ns.GetByName(id).Handle(w, r))
}

func tooLarge(n int) error {
	return fmt.Errorf("%w: content is %d bytes, over %d", ErrTooLarge, n, MaxContent)
}

// wrap names the document in errors.
func wrap(id string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("document %q: %w", id, err)
}
