package gateway

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/durableobjects/durable/patterns/session"
)

// Session request bodies (api.md, "Sessions"). A pointer or RawMessage
// field is nil when the key is absent; data present as null decodes to the
// RawMessage "null".
type (
	sessionCreateRequest struct {
		UserID *string         `json:"user_id"`
		Data   json.RawMessage `json:"data"`
		TTLMS  *int64          `json:"ttl_ms"`
	}
	sessionPatchRequest struct {
		Data  json.RawMessage `json:"data"`
		TTLMS *int64          `json:"ttl_ms"`
	}
	sessionCreated struct {
		ID          string `json:"id"`
		UserID      string `json:"user_id"`
		ExpiresAtMS int64  `json:"expires_at_ms"`
	}
	sessionList struct {
		Sessions []session.Info `json:"sessions"`
	}
	sessionsRevoked struct {
		Revoked int `json:"revoked"`
	}
)

// setupSessions registers the sessions routes of api.md.
func (g *Gateway) setupSessions() error {
	sessions, err := session.Register(g.rt, session.Options{})
	if err != nil {
		return err
	}

	g.handle("POST /v1/sessions", func(w http.ResponseWriter, r *http.Request) error {
		var req sessionCreateRequest
		if err := decodeJSON(w, r, g.cfg.MaxBody, &req); err != nil {
			return err
		}
		if req.UserID == nil {
			return invalid("user_id is required")
		}
		if err := checkUserID(*req.UserID); err != nil {
			return err
		}
		if err := checkSessionData(req.Data); err != nil {
			return err
		}
		ttl, err := sessionTTL(req.TTLMS)
		if err != nil {
			return err
		}
		if ttl == 0 {
			ttl = session.DefaultTTL
		}
		s, err := sessions.Create(r.Context(), session.CreateParams{UserID: *req.UserID, Data: req.Data, TTL: ttl})
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusCreated, sessionCreated{ID: s.ID, UserID: s.UserID, ExpiresAtMS: s.ExpiresAtMS})
		return nil
	})

	g.handle("GET /v1/sessions/{id}", func(w http.ResponseWriter, r *http.Request) error {
		id, err := pathParam(r, "id")
		if err != nil {
			return err
		}
		s, err := sessions.GetJSON(r.Context(), id)
		if err != nil {
			return err
		}
		writeEncoded(w, http.StatusOK, s)
		return nil
	})

	g.handle("PATCH /v1/sessions/{id}", func(w http.ResponseWriter, r *http.Request) error {
		id, err := pathParam(r, "id")
		if err != nil {
			return err
		}
		var req sessionPatchRequest
		if err := decodeJSON(w, r, g.cfg.MaxBody, &req); err != nil {
			return err
		}
		if err := checkSessionData(req.Data); err != nil {
			return err
		}
		ttl, err := sessionTTL(req.TTLMS)
		if err != nil {
			return err
		}
		s, err := sessions.PatchJSON(r.Context(), id, session.PatchParams{Data: req.Data, TTL: ttl})
		if err != nil {
			return err
		}
		writeEncoded(w, http.StatusOK, s)
		return nil
	})

	g.handle("DELETE /v1/sessions/{id}", func(w http.ResponseWriter, r *http.Request) error {
		id, err := pathParam(r, "id")
		if err != nil {
			return err
		}
		if err := sessions.Delete(r.Context(), id); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})

	g.handle("GET /v1/users/{user_id}/sessions", func(w http.ResponseWriter, r *http.Request) error {
		user, err := pathParam(r, "user_id")
		if err != nil {
			return err
		}
		list, err := sessions.ListByUser(r.Context(), user)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, sessionList{Sessions: list})
		return nil
	})

	g.handle("DELETE /v1/users/{user_id}/sessions", func(w http.ResponseWriter, r *http.Request) error {
		user, err := pathParam(r, "user_id")
		if err != nil {
			return err
		}
		n, err := sessions.RevokeAll(r.Context(), user)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, sessionsRevoked{Revoked: n})
		return nil
	})
	return nil
}

// checkUserID applies the path parameter rules to a user_id in a body, so
// every session's user can be named in /v1/users/{user_id}/sessions.
func checkUserID(v string) error {
	switch {
	case v == "":
		return invalid("user_id is empty")
	case len(v) > session.MaxUserID:
		return invalid("user_id is %d bytes, over %d", len(v), session.MaxUserID)
	case !utf8.ValidString(v):
		return invalid("user_id is not valid UTF-8")
	case strings.IndexFunc(v, unicode.IsControl) >= 0:
		return invalid("user_id contains a control character")
	}
	return nil
}

// checkSessionData limits data to 64 KiB of JSON, counted as sent.
func checkSessionData(data json.RawMessage) error {
	return rawJSONSize("data", data, session.MaxDataSize)
}

// sessionTTL checks ttl_ms (1000..31536000000) and returns it as a
// duration; 0 when absent.
func sessionTTL(ms *int64) (time.Duration, error) {
	if ms == nil {
		return 0, nil
	}
	lo, hi := session.MinTTL.Milliseconds(), session.MaxTTL.Milliseconds()
	if *ms < lo || *ms > hi {
		return 0, invalid("ttl_ms is %d, want %d..%d", *ms, lo, hi)
	}
	return time.Duration(*ms) * time.Millisecond, nil
}
