package gateway

import (
	"encoding/base64"
	"net/http"
	"strings"

	"github.com/durableobjects/durable/patterns/collab"
)

// DocsMaxBody is the body limit of PUT /v1/docs/{id} (or Config.MaxBody if
// that is larger). A JSON string may spell each byte of content as a
// six-byte \u escape (encoders commonly do so for <, > and &, and must for
// control characters), so the limit lets any content of up to
// collab.MaxContent bytes through however it is escaped, with 64 KiB to
// spare for the rest of the object; content over collab.MaxContent in a
// body under the limit is a 400, and only a body over it is a 413.
const DocsMaxBody = 6*collab.MaxContent + 64<<10

// docPutRequest is the body of PUT /v1/docs/{id}; base_version null is
// the same as absent.
type docPutRequest struct {
	Content     *string `json:"content"`
	BaseVersion *int64  `json:"base_version"`
}

type docVersion struct {
	Version int64 `json:"version"`
}

// setupDocs registers the collaborative-documents routes of api.md.
func (g *Gateway) setupDocs() error {
	docs, err := collab.Register(g.rt)
	if err != nil {
		return err
	}
	maxBody := max(g.cfg.MaxBody, DocsMaxBody)

	g.handle("GET /v1/docs/{id}", func(w http.ResponseWriter, r *http.Request) error {
		id, err := pathParam(r, "id")
		if err != nil {
			return err
		}
		if headerHasToken(r.Header, "Upgrade", "websocket") {
			if err := checkWebSocketHandshake(r); err != nil {
				return err
			}
			return docs.Connect(w, r, id)
		}
		d, err := docs.Get(r.Context(), id)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, d)
		return nil
	})

	g.handle("PUT /v1/docs/{id}", func(w http.ResponseWriter, r *http.Request) error {
		id, err := pathParam(r, "id")
		if err != nil {
			return err
		}
		var req docPutRequest
		if err := decodeJSON(w, r, maxBody, &req); err != nil {
			return err
		}
		if req.Content == nil {
			return invalid("content is required")
		}
		if len(*req.Content) > collab.MaxContent {
			return invalid("content is %d bytes, over %s", len(*req.Content), formatBytes(collab.MaxContent))
		}
		v, err := docs.Put(r.Context(), id, *req.Content, req.BaseVersion)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, docVersion{v})
		return nil
	})
	return nil
}

// checkWebSocketHandshake checks what the WebSocket library would refuse
// with a plain-text answer after the document ran (RFC 6455, 4.2.1), so a
// bad handshake gets api.md's 400 without touching the object. Origin
// checks are left to the runtime (Runtime.WebSocketOriginPatterns).
func checkWebSocketHandshake(r *http.Request) error {
	switch {
	case r.Method != http.MethodGet:
		return invalid("a WebSocket handshake is a GET")
	case !r.ProtoAtLeast(1, 1):
		return invalid("a WebSocket handshake needs HTTP/1.1")
	case !headerHasToken(r.Header, "Connection", "upgrade"):
		return invalid("a WebSocket handshake needs Connection: Upgrade")
	case r.Header.Get("Sec-WebSocket-Version") != "13":
		return invalid("Sec-WebSocket-Version must be 13")
	}
	keys := r.Header.Values("Sec-WebSocket-Key")
	if len(keys) != 1 {
		return invalid("a WebSocket handshake needs one Sec-WebSocket-Key")
	}
	if k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(keys[0])); err != nil || len(k) != 16 {
		return invalid("Sec-WebSocket-Key must be 16 bytes in base64")
	}
	return nil
}

// headerHasToken reports whether a comma-separated header has token
// (case-insensitive).
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}
