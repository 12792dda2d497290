package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// CreateSessionRequest is a new session.
type CreateSessionRequest struct {
	UserID string // required
	// Data is any JSON value of at most 64 KiB once encoded with
	// encoding/json (a json.RawMessage is sent as is); nil sends none
	// (the server's default, null).
	Data any
	// TTL is the session's lifetime, 1 s..365 days, sent in whole
	// milliseconds (rounded up); 0 sends none (the server's default, 24 h).
	TTL time.Duration
}

// SessionCreated is the answer to CreateSession.
type SessionCreated struct {
	ID        string
	UserID    string
	ExpiresAt time.Time
}

// Session is a live session.
type Session struct {
	ID        string
	UserID    string
	Data      json.RawMessage // "null" when unset
	CreatedAt time.Time
	ExpiresAt time.Time
}

// SessionInfo is a session as listed for its user.
type SessionInfo struct {
	ID        string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// SessionPatch changes a session; its zero value changes nothing.
type SessionPatch struct {
	// Data, when not nil, replaces the whole value. To set it to null,
	// pass json.RawMessage("null"); nil leaves it as it is.
	Data any
	// TTL, when not 0, slides the expiry to now + TTL.
	TTL time.Duration
}

type sessionJSON struct {
	ID          string          `json:"id"`
	UserID      string          `json:"user_id"`
	Data        json.RawMessage `json:"data"`
	CreatedAtMS int64           `json:"created_at_ms"`
	ExpiresAtMS int64           `json:"expires_at_ms"`
}

func (s *sessionJSON) session() *Session {
	return &Session{ID: s.ID, UserID: s.UserID, Data: s.Data, CreatedAt: fromMS(s.CreatedAtMS), ExpiresAt: fromMS(s.ExpiresAtMS)}
}

// CreateSession creates a session: POST /v1/sessions.
//
// Retries: after a 503 overloaded/unavailable or a failed dial only. A
// connection error once the request may have been sent is returned (with
// ErrUnknownOutcome), never retried: a retry could create a second
// session. A session lost that way expires after its TTL; to clean up at
// once, list the user's sessions (ListUserSessions) and delete what the
// caller does not know.
func (c *Client) CreateSession(ctx context.Context, req CreateSessionRequest) (*SessionCreated, error) {
	body := map[string]any{"user_id": req.UserID}
	if req.Data != nil {
		body["data"] = req.Data
	}
	if req.TTL != 0 {
		body["ttl_ms"] = ms(req.TTL)
	}
	var out struct {
		ID          string `json:"id"`
		UserID      string `json:"user_id"`
		ExpiresAtMS int64  `json:"expires_at_ms"`
	}
	r := &request{method: http.MethodPost, path: "/v1/sessions", safety: once, body: body}
	if err := c.call(ctx, r, http.StatusCreated, &out); err != nil {
		return nil, err
	}
	return &SessionCreated{ID: out.ID, UserID: out.UserID, ExpiresAt: fromMS(out.ExpiresAtMS)}, nil
}

// GetSession returns the live session id: GET /v1/sessions/{id}. An
// unknown or expired session is ErrNotFound. Retried after any retryable
// failure (a read).
func (c *Client) GetSession(ctx context.Context, id string) (*Session, error) {
	p, err := seg("id", id)
	if err != nil {
		return nil, err
	}
	var out sessionJSON
	r := &request{method: http.MethodGet, path: "/v1/sessions/" + p, safety: idempotent}
	if err := c.call(ctx, r, http.StatusOK, &out); err != nil {
		return nil, err
	}
	return out.session(), nil
}

// PatchSession changes the session id and returns it as changed:
// PATCH /v1/sessions/{id}. An unknown or expired session is ErrNotFound.
//
// Retries: also after ambiguous connection errors. A patch sets values
// rather than adding to them, so applying it twice leaves what applying
// it once does (with a TTL, the expiry slides from the later attempt).
// Two writers racing are last-writer-wins with or without the retry.
func (c *Client) PatchSession(ctx context.Context, id string, patch SessionPatch) (*Session, error) {
	p, err := seg("id", id)
	if err != nil {
		return nil, err
	}
	body := map[string]any{}
	if patch.Data != nil {
		body["data"] = patch.Data
	}
	if patch.TTL != 0 {
		body["ttl_ms"] = ms(patch.TTL)
	}
	var out sessionJSON
	r := &request{method: http.MethodPatch, path: "/v1/sessions/" + p, safety: idempotent, body: body}
	if err := c.call(ctx, r, http.StatusOK, &out); err != nil {
		return nil, err
	}
	return out.session(), nil
}

// DeleteSession deletes the session id: DELETE /v1/sessions/{id}. An
// unknown or expired session is ErrNotFound.
//
// Retries: also after ambiguous connection errors (deleting is
// idempotent). If the lost attempt deleted it, the retry answers
// ErrNotFound marked with ErrUnknownOutcome.
func (c *Client) DeleteSession(ctx context.Context, id string) error {
	p, err := seg("id", id)
	if err != nil {
		return err
	}
	r := &request{method: http.MethodDelete, path: "/v1/sessions/" + p, safety: idempotent}
	return c.call(ctx, r, http.StatusNoContent, nil)
}

// ListUserSessions lists the live sessions of userID:
// GET /v1/users/{user_id}/sessions. Retried after any retryable failure
// (a read).
func (c *Client) ListUserSessions(ctx context.Context, userID string) ([]SessionInfo, error) {
	p, err := seg("user_id", userID)
	if err != nil {
		return nil, err
	}
	var out struct {
		Sessions []struct {
			ID          string `json:"id"`
			CreatedAtMS int64  `json:"created_at_ms"`
			ExpiresAtMS int64  `json:"expires_at_ms"`
		} `json:"sessions"`
	}
	r := &request{method: http.MethodGet, path: "/v1/users/" + p + "/sessions", safety: idempotent}
	if err := c.call(ctx, r, http.StatusOK, &out); err != nil {
		return nil, err
	}
	list := make([]SessionInfo, len(out.Sessions))
	for i, s := range out.Sessions {
		list[i] = SessionInfo{ID: s.ID, CreatedAt: fromMS(s.CreatedAtMS), ExpiresAt: fromMS(s.ExpiresAtMS)}
	}
	return list, nil
}

// RevokeUserSessions deletes every live session of userID and returns how
// many it deleted: DELETE /v1/users/{user_id}/sessions.
//
// Retries: also after ambiguous connection errors (revoking all is
// idempotent: afterwards the user has no session either way). The count
// is then the retry's alone: sessions the lost attempt revoked are not
// in it.
func (c *Client) RevokeUserSessions(ctx context.Context, userID string) (int, error) {
	p, err := seg("user_id", userID)
	if err != nil {
		return 0, err
	}
	var out struct {
		Revoked *int `json:"revoked"`
	}
	r := &request{method: http.MethodDelete, path: "/v1/users/" + p + "/sessions", safety: idempotent}
	if err := c.call(ctx, r, http.StatusOK, &out); err != nil {
		return 0, err
	}
	if out.Revoked == nil {
		return 0, fmt.Errorf("durable: revoke sessions: answer without revoked")
	}
	return *out.Revoked, nil
}
