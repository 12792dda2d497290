package torture

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestStateSurvivesRestart stops `durable serve` with SIGTERM (a clean exit)
// or SIGKILL right after a set of acknowledged requests, starts it again on
// the same data directory, and checks each pattern's state: rate-limit
// counts, a held lock and its fencing, a session, and a pending scheduled
// event, which must fire after the restart.
func TestStateSurvivesRestart(t *testing.T) {
	for _, how := range []string{"SIGTERM", "SIGKILL"} {
		t.Run(how, func(t *testing.T) {
			fired := make(chan string, 10)
			hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				var body struct {
					ID string `json:"id"`
				}
				json.NewDecoder(r.Body).Decode(&body)
				fired <- body.ID
			}))
			defer hook.Close()
			dir := t.TempDir()
			c := &http.Client{Timeout: 30 * time.Second}
			args := []string{"--webhook", "hook=" + hook.URL}

			s := startServer(t, dir, args...)
			rl := map[string]any{"limit": 5, "window_ms": 3_600_000}
			for range 3 {
				if r := mustCall(t, c, "POST", s.URL+"/v1/ratelimit/k/check", rl); r.Status != 200 {
					t.Fatalf("check: %d %s", r.Status, r.Body)
				}
			}
			var grant struct {
				Token   string `json:"token"`
				Fencing int64  `json:"fencing"`
			}
			if err := mustCall(t, c, "POST", s.URL+"/v1/locks/l/acquire", map[string]any{"ttl_ms": 3_600_000}).decode(&grant); err != nil {
				t.Fatal(err)
			}
			var sess struct {
				ID string `json:"id"`
			}
			if err := mustCall(t, c, "POST", s.URL+"/v1/sessions", map[string]any{"user_id": "ada", "data": map[string]int{"n": 7}}).decode(&sess); err != nil {
				t.Fatal(err)
			}
			runAt := time.Now().Add(8 * time.Second).UnixMilli()
			if r := mustCall(t, c, "PUT", s.URL+"/v1/schedulers/s/events/e1", map[string]any{"run_at_ms": runAt, "target": "hook"}); r.Status != 200 {
				t.Fatalf("put event: %d %s", r.Status, r.Body)
			}
			if how == "SIGTERM" {
				s.stop()
			} else {
				s.kill()
			}
			if len(fired) > 0 {
				t.Fatal("the event fired before the restart; it was meant to be pending across it")
			}

			s = startServer(t, dir, args...)
			var check struct {
				Remaining int `json:"remaining"`
			}
			if err := mustCall(t, c, "POST", s.URL+"/v1/ratelimit/k/check", rl).decode(&check); err != nil || check.Remaining != 1 {
				t.Fatalf("4th check after restart: remaining %d (%v), want 1: the 3 before were lost", check.Remaining, err)
			}
			var lock struct {
				Held    bool  `json:"held"`
				Fencing int64 `json:"fencing"`
			}
			if err := mustCall(t, c, "GET", s.URL+"/v1/locks/l", nil).decode(&lock); err != nil || !lock.Held || lock.Fencing != grant.Fencing {
				t.Fatalf("lock after restart: %+v (%v), want held with fencing %d", lock, err, grant.Fencing)
			}
			if r := mustCall(t, c, "POST", s.URL+"/v1/locks/l/acquire", map[string]any{}); r.Status != http.StatusConflict {
				t.Fatalf("acquire of a held lock after restart: %d %s", r.Status, r.Body)
			}
			if r := mustCall(t, c, "POST", s.URL+"/v1/locks/l/release", map[string]any{"token": grant.Token}); r.Status != 200 {
				t.Fatalf("release with the token from before the restart: %d %s", r.Status, r.Body)
			}
			var again struct {
				Fencing int64 `json:"fencing"`
			}
			if err := mustCall(t, c, "POST", s.URL+"/v1/locks/l/acquire", map[string]any{}).decode(&again); err != nil || again.Fencing <= grant.Fencing {
				t.Fatalf("fencing after restart %d (%v), want more than %d", again.Fencing, err, grant.Fencing)
			}
			var got struct {
				Data map[string]int `json:"data"`
			}
			if err := mustCall(t, c, "GET", s.URL+"/v1/sessions/"+sess.ID, nil).decode(&got); err != nil || got.Data["n"] != 7 {
				t.Fatalf("session after restart: %+v (%v)", got, err)
			}
			select {
			case id := <-fired:
				if id != "e1" {
					t.Fatalf("webhook for %q", id)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("the event scheduled before the restart never fired")
			}
			s.stop()
		})
	}
}
