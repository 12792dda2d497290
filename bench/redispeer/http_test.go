package redispeer

import (
	"net/http"
	"strings"
	"testing"
)

func TestHTTPConventions(t *testing.T) {
	p := newPeer(t, Config{Token: "tok"})
	auth := []string{"Authorization", "Bearer tok"}
	check := `{"limit":5,"window_ms":1000}`
	tests := []struct {
		name, method, path, body string
		hdr                      []string
		status                   int
		code                     string
	}{
		{"no token", "POST", "/v1/ratelimit/k/check", check, nil, 401, "unauthorized"},
		{"wrong token", "POST", "/v1/ratelimit/k/check", check, []string{"Authorization", "Bearer nope"}, 401, "unauthorized"},
		{"auth before 404", "GET", "/v1/nothing", "", nil, 401, "unauthorized"},
		{"unknown route", "GET", "/v1/nothing", "", auth, 404, "not_found"},
		{"outside v1", "GET", "/other", "", nil, 404, "not_found"},
		{"wrong method", "GET", "/v1/ratelimit/k/check", "", auth, 405, "method_not_allowed"},
		{"healthz method", "POST", "/healthz", "", nil, 405, "method_not_allowed"},
		{"missing limit", "POST", "/v1/ratelimit/k/check", `{"window_ms":1000}`, auth, 400, "invalid_argument"},
		{"unknown field", "POST", "/v1/ratelimit/k/check", `{"limit":5,"window_ms":1000,"x":1}`, auth, 400, "invalid_argument"},
		{"wrong type", "POST", "/v1/ratelimit/k/check", `{"limit":"5","window_ms":1000}`, auth, 400, "invalid_argument"},
		{"malformed", "POST", "/v1/ratelimit/k/check", `{"limit":5,`, auth, 400, "invalid_argument"},
		{"trailing data", "POST", "/v1/ratelimit/k/check", check + `{}`, auth, 400, "invalid_argument"},
		{"cost over limit", "POST", "/v1/ratelimit/k/check", `{"limit":5,"window_ms":1000,"cost":6}`, auth, 400, "invalid_argument"},
		{"limit too big", "POST", "/v1/ratelimit/k/check", `{"limit":1000000001,"window_ms":1000}`, auth, 400, "invalid_argument"},
		{"bad algorithm", "POST", "/v1/ratelimit/k/check", `{"limit":5,"window_ms":1000,"algorithm":"x"}`, auth, 400, "invalid_argument"},
		{"long key", "POST", "/v1/ratelimit/" + strings.Repeat("a", 257) + "/check", check, auth, 400, "invalid_argument"},
		{"control char key", "POST", "/v1/ratelimit/a%01b/check", check, auth, 400, "invalid_argument"},
		{"bad utf-8 key", "POST", "/v1/ratelimit/a%ffb/check", check, auth, 400, "invalid_argument"},
		{"too large", "POST", "/v1/ratelimit/k/check", `{"limit":5,"window_ms":1000,"algorithm":"` + strings.Repeat("x", 1<<20) + `"}`, auth, 413, "payload_too_large"},
		{"session without user", "POST", "/v1/sessions", `{}`, auth, 400, "invalid_argument"},
		{"session ttl too small", "POST", "/v1/sessions", `{"user_id":"u","ttl_ms":999}`, auth, 400, "invalid_argument"},
		{"session data too big", "POST", "/v1/sessions", `{"user_id":"u","data":"` + strings.Repeat("x", 64<<10) + `"}`, auth, 400, "invalid_argument"},
		{"lock ttl 0", "POST", "/v1/locks/l/acquire", `{"ttl_ms":0}`, auth, 400, "invalid_argument"},
		{"renew without token", "POST", "/v1/locks/l/renew", `{}`, auth, 400, "invalid_argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body, hdr := p.do(tt.method, tt.path, tt.body, tt.hdr...)
			if status != tt.status || errCode(body) != tt.code {
				t.Fatalf("got %d %q, want %d %q (body %v)", status, errCode(body), tt.status, tt.code, body)
			}
			if e, _ := body["error"].(map[string]any); e["message"] == "" || e["message"] == nil {
				t.Errorf("error without message: %v", body)
			}
			if status == 405 && hdr.Get("Allow") == "" {
				t.Error("405 without Allow")
			}
		})
	}
	if status, body, _ := p.do("GET", "/healthz", ""); status != 200 || body["status"] != "ok" {
		t.Errorf("healthz: %d %v", status, body)
	}
	if status, _, hdr := p.do("GET", "/v1/sessions", "", auth...); status != http.StatusMethodNotAllowed || hdr.Get("Allow") != "POST" {
		t.Errorf("GET /v1/sessions: %d Allow %q, want 405 POST", status, hdr.Get("Allow"))
	}
}
