package redispeer

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

func TestLockLifecycle(t *testing.T) {
	p := newPeer(t, Config{})
	if status, m, _ := p.do("GET", "/v1/locks/l", ""); status != 200 || m["held"] != false || m["fencing"] != 0.0 || m["expires_at_ms"] != nil || m["owner"] != nil {
		t.Fatalf("fresh lock: %d %v", status, m)
	}
	status, g, _ := p.do("POST", "/v1/locks/l/acquire", `{"ttl_ms":60000,"owner":"w1"}`)
	tok, _ := g["token"].(string)
	if status != 200 || len(tok) < 22 || g["fencing"] != 1.0 || g["expires_at_ms"] == nil {
		t.Fatalf("acquire: %d %v", status, g)
	}
	if status, m, _ := p.do("GET", "/v1/locks/l", ""); status != 200 || m["held"] != true || m["owner"] != "w1" || m["expires_at_ms"] != g["expires_at_ms"] {
		t.Errorf("held lock: %d %v", status, m)
	}
	if status, m, _ := p.do("POST", "/v1/locks/l/acquire", `{}`); status != 409 || errCode(m) != "lock_held" {
		t.Errorf("second acquire: %d %v", status, m)
	}
	if status, m, _ := p.do("POST", "/v1/locks/l/renew", `{"token":"nope"}`); status != 409 || errCode(m) != "not_owner" {
		t.Errorf("renew with a wrong token: %d %v", status, m)
	}
	if status, m, _ := p.do("POST", "/v1/locks/l/renew", fmt.Sprintf(`{"token":%q,"ttl_ms":120000}`, tok)); status != 200 || m["expires_at_ms"].(float64) <= g["expires_at_ms"].(float64) {
		t.Errorf("renew: %d %v", status, m)
	}
	if status, m, _ := p.do("POST", "/v1/locks/l/release", `{"token":"nope"}`); status != 409 || errCode(m) != "not_owner" {
		t.Errorf("release with a wrong token: %d %v", status, m)
	}
	if status, m, _ := p.do("POST", "/v1/locks/l/release", fmt.Sprintf(`{"token":%q}`, tok)); status != 200 || m["released"] != true {
		t.Errorf("release: %d %v", status, m)
	}
	if status, m, _ := p.do("POST", "/v1/locks/l/release", fmt.Sprintf(`{"token":%q}`, tok)); status != 409 || errCode(m) != "not_owner" {
		t.Errorf("second release: %d %v", status, m)
	}
	if status, m, _ := p.do("GET", "/v1/locks/l", ""); m["held"] != false || m["fencing"] != 1.0 || m["owner"] != nil {
		t.Errorf("released lock: %d %v", status, m)
	}
	if status, g, _ := p.do("POST", "/v1/locks/l/acquire", ``); status != 200 || g["fencing"] != 2.0 {
		t.Errorf("re-acquire: %d %v, want fencing 2", status, g)
	}
	if status, m, _ := p.do("GET", "/v1/locks/l", ""); m["held"] != true || m["owner"] != nil {
		t.Errorf("lock without owner: %d %v", status, m)
	}
}

func TestLockWaitGetsExpiredLock(t *testing.T) {
	p := newPeer(t, Config{})
	status, first, _ := p.do("POST", "/v1/locks/w/acquire", `{"ttl_ms":200}`)
	if status != 200 {
		t.Fatal(status)
	}
	status, g, _ := p.do("POST", "/v1/locks/w/acquire", `{"ttl_ms":5000,"wait_ms":10000}`)
	if status != 200 || g["fencing"] != 2.0 {
		t.Fatalf("waiting acquire: %d %v", status, g)
	}
	if g["expires_at_ms"].(float64) <= first["expires_at_ms"].(float64) {
		t.Errorf("second grant expires at %v, not after the first %v", g["expires_at_ms"], first["expires_at_ms"])
	}
	// The expired token is dead.
	if status, _, _ := p.do("POST", "/v1/locks/w/renew", fmt.Sprintf(`{"token":%q}`, first["token"])); status != 409 {
		t.Errorf("renew with an expired token: %d", status)
	}
}

func TestLockMutualExclusion(t *testing.T) {
	p := newPeer(t, Config{})
	var granted atomic.Int64
	var wg sync.WaitGroup
	for range 30 {
		wg.Go(func() {
			if status, _, _ := p.do("POST", "/v1/locks/m/acquire", `{"ttl_ms":60000}`); status == 200 {
				granted.Add(1)
			}
		})
	}
	wg.Wait()
	if granted.Load() != 1 {
		t.Errorf("%d concurrent grants, want 1", granted.Load())
	}
}

func TestLockWaitersAnswer503OnShutdown(t *testing.T) {
	p := newPeer(t, Config{})
	if status, _, _ := p.do("POST", "/v1/locks/s/acquire", `{"ttl_ms":60000}`); status != 200 {
		t.Fatal(status)
	}
	p.srv.Shutdown()
	status, m, hdr := p.do("POST", "/v1/locks/s/acquire", `{"wait_ms":30000}`)
	if status != 503 || errCode(m) != "unavailable" || hdr.Get("Retry-After") == "" {
		t.Errorf("waiting acquire during shutdown: %d %v Retry-After %q", status, m, hdr.Get("Retry-After"))
	}
}
