package redispeer

import (
	"encoding/json"
	"testing"
	"time"
)

func TestSessionLifecycle(t *testing.T) {
	p := newPeer(t, Config{})
	status, c, _ := p.do("POST", "/v1/sessions", `{"user_id":"alice","data":{"cart":[1, 2],"n":12345678901234567890},"ttl_ms":60000}`)
	id, _ := c["id"].(string)
	if status != 201 || len(id) < 22 || c["user_id"] != "alice" || c["expires_at_ms"] == nil {
		t.Fatalf("create: %d %v", status, c)
	}
	status, g, _ := p.do("GET", "/v1/sessions/"+id, "")
	if status != 200 || g["id"] != id || g["user_id"] != "alice" || g["expires_at_ms"] != c["expires_at_ms"] {
		t.Fatalf("get: %d %v", status, g)
	}
	if got, _ := json.Marshal(g["data"]); string(got) != `{"cart":[1,2],"n":12345678901234567000}` {
		t.Errorf("data = %s", got) // float64 in the test's decoder; the server keeps raw JSON
	}
	if g["created_at_ms"].(float64)+60000 != g["expires_at_ms"].(float64) {
		t.Errorf("created %v + ttl != expires %v", g["created_at_ms"], g["expires_at_ms"])
	}
	// PATCH without data keeps it; with data: null replaces it.
	if status, m, _ := p.do("PATCH", "/v1/sessions/"+id, `{"ttl_ms":120000}`); status != 200 || m["data"] == nil || m["expires_at_ms"].(float64) <= c["expires_at_ms"].(float64) {
		t.Errorf("patch ttl: %d %v", status, m)
	}
	if status, m, _ := p.do("PATCH", "/v1/sessions/"+id, `{"data":null}`); status != 200 || m["data"] != nil {
		t.Errorf("patch data null: %d %v", status, m)
	}
	if status, m, _ := p.do("GET", "/v1/sessions/"+id, ""); status != 200 || m["data"] != nil {
		t.Errorf("get after patch: %d %v", status, m)
	}
	if status, m, _ := p.do("PATCH", "/v1/sessions/"+id, `{"data":[1]}`); status != 200 {
		t.Errorf("patch data: %d %v", status, m)
	}
	status, c2, _ := p.do("POST", "/v1/sessions", `{"user_id":"alice"}`)
	if status != 201 {
		t.Fatal(status)
	}
	status, l, _ := p.do("GET", "/v1/users/alice/sessions", "")
	if list, _ := l["sessions"].([]any); status != 200 || len(list) != 2 {
		t.Fatalf("list: %d %v", status, l)
	}
	if status, _, _ := p.do("DELETE", "/v1/sessions/"+id, ""); status != 204 {
		t.Errorf("delete: %d", status)
	}
	for _, req := range [][2]string{{"GET", ""}, {"DELETE", ""}, {"PATCH", `{}`}} {
		if status, m, _ := p.do(req[0], "/v1/sessions/"+id, req[1]); status != 404 || errCode(m) != "not_found" {
			t.Errorf("%s deleted session: %d %v", req[0], status, m)
		}
	}
	if status, m, _ := p.do("DELETE", "/v1/users/alice/sessions", ""); status != 200 || m["revoked"] != 1.0 {
		t.Errorf("revoke: %d %v", status, m)
	}
	if status, _, _ := p.do("GET", "/v1/sessions/"+c2["id"].(string), ""); status != 404 {
		t.Errorf("revoked session: %d", status)
	}
	if status, l, _ := p.do("GET", "/v1/users/alice/sessions", ""); status != 200 || len(l["sessions"].([]any)) != 0 {
		t.Errorf("list after revoke: %d %v", status, l)
	}
	if status, m, _ := p.do("DELETE", "/v1/users/nobody/sessions", ""); status != 200 || m["revoked"] != 0.0 {
		t.Errorf("revoke nobody: %d %v", status, m)
	}
}

func TestSessionExpiresAtExactlyExpiresAt(t *testing.T) {
	p := newPeer(t, Config{})
	status, c, _ := p.do("POST", "/v1/sessions", `{"user_id":"bob","ttl_ms":60000}`)
	if status != 201 {
		t.Fatal(status)
	}
	id := c["id"].(string)
	// Move the server's clock to the expiry instant: Redis still holds the
	// key, but the session must not be returned, patched, listed or counted.
	p.clock.advance(60 * time.Second)
	if status, _, _ := p.do("GET", "/v1/sessions/"+id, ""); status != 404 {
		t.Errorf("get at expires_at_ms: %d, want 404", status)
	}
	if status, _, _ := p.do("PATCH", "/v1/sessions/"+id, `{"data":1}`); status != 404 {
		t.Errorf("patch at expires_at_ms: %d, want 404", status)
	}
	if _, l, _ := p.do("GET", "/v1/users/bob/sessions", ""); len(l["sessions"].([]any)) != 0 {
		t.Errorf("list at expires_at_ms: %v", l)
	}
	if _, m, _ := p.do("DELETE", "/v1/users/bob/sessions", ""); m["revoked"] != 0.0 {
		t.Errorf("revoke at expires_at_ms: %v", m)
	}
}
