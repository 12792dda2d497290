package redispeer

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/redis/go-redis/v9"
)

var (
	//go:embed session_create.lua
	sessionCreateLua    string
	sessionCreateScript = redis.NewScript(sessionCreateLua)

	//go:embed session_patch.lua
	sessionPatchLua    string
	sessionPatchScript = redis.NewScript(sessionPatchLua)

	//go:embed session_delete.lua
	sessionDeleteLua    string
	sessionDeleteScript = redis.NewScript(sessionDeleteLua)

	//go:embed user_sessions.lua
	userSessionsLua    string
	userSessionsScript = redis.NewScript(userSessionsLua)
)

// Session limits from api.md.
const (
	maxSessionData = 64 << 10
	defaultTTL     = 86_400_000
	minTTL         = 1000
	maxTTL         = 31_536_000_000
)

type session struct {
	ID          string          `json:"id"`
	UserID      string          `json:"user_id"`
	Data        json.RawMessage `json:"data"`
	CreatedAtMS int64           `json:"created_at_ms"`
	ExpiresAtMS int64           `json:"expires_at_ms"`
}

func (s *Server) nowMS() int64 { return s.cfg.Now().UnixMilli() }

// checkData validates and compacts a session's data.
func checkData(raw json.RawMessage) (string, error) {
	if raw == nil {
		return "null", nil
	}
	if len(raw) > maxSessionData {
		return "", errInvalid("data must be at most %d bytes of JSON", maxSessionData)
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return "", errInvalid("data: %v", err)
	}
	return b.String(), nil
}

type createRequest struct {
	UserID *string         `json:"user_id"`
	Data   json.RawMessage `json:"data"`
	TTLMS  *int64          `json:"ttl_ms"`
}

// sessionCreate answers POST /v1/sessions.
func (s *Server) sessionCreate(w http.ResponseWriter, r *http.Request, _ []string) error {
	var req createRequest
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	if req.UserID == nil {
		return errInvalid("user_id is required")
	}
	if err := checkParam("user_id", *req.UserID); err != nil {
		return err
	}
	ttl, err := intIn("ttl_ms", req.TTLMS, defaultTTL, minTTL, maxTTL)
	if err != nil {
		return err
	}
	data, err := checkData(req.Data)
	if err != nil {
		return err
	}
	id := newToken()
	now := s.nowMS()
	exp := now + ttl
	keys := []string{"s:" + id, "u:" + *req.UserID}
	if err := sessionCreateScript.Run(r.Context(), s.rdb, keys, *req.UserID, data, now, exp, id).Err(); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"id": id, "user_id": *req.UserID, "expires_at_ms": exp})
	return nil
}

// sessionGet answers GET /v1/sessions/{id}.
func (s *Server) sessionGet(w http.ResponseWriter, r *http.Request, p []string) error {
	vals, err := s.rdb.HMGet(r.Context(), "s:"+p[0], "user_id", "data", "created", "exp").Result()
	if err != nil {
		return err
	}
	sess, ok := toSession(p[0], vals)
	if !ok || s.nowMS() >= sess.ExpiresAtMS {
		return errNotFound("no such session")
	}
	writeJSON(w, http.StatusOK, sess)
	return nil
}

// toSession builds a session from the fields user_id, data, created, exp.
func toSession(id string, vals []any) (session, bool) {
	str := make([]string, len(vals))
	for i, v := range vals {
		s, ok := v.(string)
		if !ok {
			return session{}, false
		}
		str[i] = s
	}
	created, err1 := strconv.ParseInt(str[2], 10, 64)
	exp, err2 := strconv.ParseInt(str[3], 10, 64)
	if err1 != nil || err2 != nil {
		return session{}, false
	}
	return session{ID: id, UserID: str[0], Data: json.RawMessage(str[1]), CreatedAtMS: created, ExpiresAtMS: exp}, true
}

type patchRequest struct {
	Data  json.RawMessage `json:"data"` // nil when absent, "null" when null
	TTLMS *int64          `json:"ttl_ms"`
}

// sessionPatch answers PATCH /v1/sessions/{id}.
func (s *Server) sessionPatch(w http.ResponseWriter, r *http.Request, p []string) error {
	var req patchRequest
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	hasData, data := "0", ""
	if req.Data != nil {
		d, err := checkData(req.Data)
		if err != nil {
			return err
		}
		hasData, data = "1", d
	}
	ttl := ""
	if req.TTLMS != nil {
		v, err := intIn("ttl_ms", req.TTLMS, 0, minTTL, maxTTL)
		if err != nil {
			return err
		}
		ttl = strconv.FormatInt(v, 10)
	}
	vals, err := sessionPatchScript.Run(r.Context(), s.rdb, []string{"s:" + p[0]}, s.nowMS(), p[0], hasData, data, ttl).Slice()
	if err == redis.Nil {
		return errNotFound("no such session")
	}
	if err != nil {
		return err
	}
	sess, ok := toSession(p[0], vals)
	if !ok {
		return errNotFound("no such session")
	}
	writeJSON(w, http.StatusOK, sess)
	return nil
}

// sessionDelete answers DELETE /v1/sessions/{id}.
func (s *Server) sessionDelete(w http.ResponseWriter, r *http.Request, p []string) error {
	n, err := sessionDeleteScript.Run(r.Context(), s.rdb, []string{"s:" + p[0]}, s.nowMS(), p[0]).Int64()
	if err != nil {
		return err
	}
	if n == 0 {
		return errNotFound("no such session")
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type sessionSummary struct {
	ID          string `json:"id"`
	CreatedAtMS int64  `json:"created_at_ms"`
	ExpiresAtMS int64  `json:"expires_at_ms"`
}

// userSessions answers GET /v1/users/{user_id}/sessions.
func (s *Server) userSessions(w http.ResponseWriter, r *http.Request, p []string) error {
	vals, err := userSessionsScript.Run(r.Context(), s.rdb, []string{"u:" + p[0]}, s.nowMS(), "0").StringSlice()
	if err != nil {
		return err
	}
	list := make([]sessionSummary, 0, len(vals)/3)
	for i := 0; i+2 < len(vals); i += 3 {
		created, _ := strconv.ParseInt(vals[i+1], 10, 64)
		exp, _ := strconv.ParseInt(vals[i+2], 10, 64)
		list = append(list, sessionSummary{ID: vals[i], CreatedAtMS: created, ExpiresAtMS: exp})
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": list})
	return nil
}

// userRevoke answers DELETE /v1/users/{user_id}/sessions.
func (s *Server) userRevoke(w http.ResponseWriter, r *http.Request, p []string) error {
	n, err := userSessionsScript.Run(r.Context(), s.rdb, []string{"u:" + p[0]}, s.nowMS(), "1").Int64()
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]int64{"revoked": n})
	return nil
}
