package torture

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestTorture runs `durable serve` under a mixed concurrent load, SIGKILLs
// it at random moments, restarts it on the same data directory, and checks
// every answer against a model of what was acknowledged:
//
//   - rate limits: a check after a restart sees at least the acknowledged
//     allowed cost in the window (never under-counted), at most that plus
//     the cost of the checks whose answer was lost, and a small limit is
//     never exceeded by acknowledged grants;
//   - sessions: every acknowledged session exists with its data unless its
//     deletion was acknowledged (then it is gone), and listing a user's
//     sessions shows them;
//   - scheduled events: every acknowledged event is delivered to the
//     webhook at least once, never before its run_at_ms, and nothing that
//     was never scheduled is delivered;
//   - locks: no two grants are live at once, fencing strictly increases
//     across restarts, and every lock's history (grants, renewals, releases,
//     status reads, with lost answers as operations of unknown outcome) is
//     linearizable (porcupine).
//
// DURABLE_TORTURE_SEED=<n> replays the random choices of a run (the timing
// of concurrent requests is not replayable); DURABLE_TORTURE_ROUNDS=<n>
// sets the number of kills (20 by default, 6 with -short).
func TestTorture(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("DURABLE_TORTURE_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("DURABLE_TORTURE_SEED=%q: %v", v, err)
		}
		seed = n
	}
	rounds := 20
	if testing.Short() {
		rounds = 6
	}
	if v := os.Getenv("DURABLE_TORTURE_ROUNDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("DURABLE_TORTURE_ROUNDS=%q: want a positive integer", v)
		}
		rounds = n
	}
	t.Logf("seed %d (replay with DURABLE_TORTURE_SEED=%d), %d rounds", seed, seed, rounds)
	rng := rand.New(rand.NewPCG(seed, 0))

	m := newModel(t, seed)
	hook := httptest.NewServer(http.HandlerFunc(m.webhook))
	defer hook.Close()
	dir := t.TempDir()
	args := []string{"--webhook", "hook=" + hook.URL}

	start := time.Now()
	for round := range rounds {
		srv := startServer(t, dir, args...)
		m.verify(srv.URL, round, false)
		if t.Failed() {
			t.Fatalf("round %d (seed %d): state after restart does not match what was acknowledged", round, seed)
		}
		ld := m.startLoad(srv.URL, round)
		// A random moment: sometimes right away, mostly within a second.
		var delay time.Duration
		if rng.IntN(5) == 0 {
			delay = time.Duration(rng.IntN(30)) * time.Millisecond
		} else {
			delay = time.Duration(100+rng.IntN(800)) * time.Millisecond
		}
		time.Sleep(delay)
		srv.cmd.Process.Signal(syscall.SIGKILL)
		ld.stopped.Store(true) // requests in flight are cut; no new ones
		srv.kill()
		killed := time.Now().UnixMilli()
		ops := ld.stop(killed)
		t.Logf("round %d: killed after %v, %d operations (%d without an answer)", round, delay, ops, ld.lost.Load())
	}

	srv := startServer(t, dir, args...)
	m.verify(srv.URL, rounds, true)
	m.waitDeliveries(45 * time.Second)
	m.checkLocks()
	srv.stop()
	t.Logf("%d rounds in %v: %s", rounds, time.Since(start).Round(time.Millisecond), m.summary())
	if t.Failed() {
		t.Logf("seed %d: replay with DURABLE_TORTURE_SEED=%d", seed, seed)
	}
}

// Load shape.
const (
	workers        = 8
	rlWindowMS     = 3_600_000 // no allowed request leaves the window during the test
	smallLimit     = 25
	bigLimit       = 1_000_000
	requestTimeout = 10 * time.Second
)

var (
	rlKeys    = []string{"rl-small-0", "rl-small-1", "rl-small-2", "rl-big-0", "rl-big-1", "rl-big-2"}
	lockNames = []string{"lk-0", "lk-1", "lk-2", "lk-3"}
	users     = []string{"u0", "u1", "u2", "u3", "u4", "u5", "u6", "u7"}
	scheds    = []string{"s0", "s1", "s2"}
)

func rlLimit(key string) int64 {
	if strings.HasPrefix(key, "rl-small") {
		return smallLimit
	}
	return bigLimit
}

// model is what the clients were told, across rounds.
type model struct {
	t    *testing.T
	seed uint64

	mu       sync.Mutex
	rl       map[string]*rlModel
	lockOps  map[string][]lockOp
	maxFence map[string]int64 // highest acknowledged fencing per lock
	sessions []*sessModel
	stats    struct{ rlAllowed, rlDenied, grants, sessions, deletes, overloaded int }

	// evMu guards the events, which the webhook updates at any time.
	evMu       sync.Mutex
	events     map[string]*eventModel // by Idempotency-Key
	delivered  chan struct{}          // closed and replaced on every delivery
	scheduled  int
	deliveries int
}

type rlModel struct {
	acked   int64 // allowed cost acknowledged
	pending int64 // cost of checks whose answer was lost
}

// Session states.
const (
	sessAlive    = iota
	sessDeleting // a delete's answer was lost
	sessDeleted
)

type sessModel struct {
	id, user, data string
	state          int
}

type eventModel struct {
	sched, id  string
	runAt      int64
	acked      bool // the PUT was acknowledged (else its answer was lost)
	deliveries int
}

func newModel(t *testing.T, seed uint64) *model {
	m := &model{t: t, seed: seed, rl: map[string]*rlModel{}, lockOps: map[string][]lockOp{},
		maxFence: map[string]int64{}, events: map[string]*eventModel{}, delivered: make(chan struct{})}
	for _, k := range rlKeys {
		m.rl[k] = &rlModel{}
	}
	return m
}

func idempotencyKey(sched, id string, runAt int64) string {
	return sched + ":" + id + ":" + strconv.FormatInt(runAt, 10)
}

// webhook records a scheduler delivery.
func (m *model) webhook(w http.ResponseWriter, r *http.Request) {
	received := time.Now().UnixMilli()
	var body struct {
		Scheduler string `json:"scheduler"`
		ID        string `json:"id"`
		RunAtMS   int64  `json:"run_at_ms"`
		FiredAtMS int64  `json:"fired_at_ms"`
		Attempt   int    `json:"attempt"`
	}
	b, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(b, &body); err != nil {
		m.t.Errorf("webhook: bad body %q: %v", b, err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	key := r.Header.Get("Idempotency-Key")
	m.evMu.Lock()
	defer m.evMu.Unlock()
	m.deliveries++
	close(m.delivered)
	m.delivered = make(chan struct{})
	ev := m.events[key]
	switch {
	case key != idempotencyKey(body.Scheduler, body.ID, body.RunAtMS):
		m.t.Errorf("webhook: Idempotency-Key %q does not match body %s", key, b)
	case ev == nil:
		m.t.Errorf("webhook: delivery of an event never scheduled: %s", b)
	case body.FiredAtMS < body.RunAtMS || received < body.RunAtMS:
		m.t.Errorf("webhook: event %s delivered early: run_at_ms %d, fired_at_ms %d, received at %d", key, body.RunAtMS, body.FiredAtMS, received)
	default:
		ev.deliveries++
	}
	w.WriteHeader(http.StatusNoContent)
}

// load is one round's clients.
type load struct {
	m       *model
	base    string
	round   int
	client  *http.Client
	stopped atomic.Bool
	wg      sync.WaitGroup
	ops     atomic.Int64
	lost    atomic.Int64
	mu      sync.Mutex
	pending []func(killed int64) // records of operations whose answer was lost
}

func (m *model) startLoad(base string, round int) *load {
	ld := &load{m: m, base: base, round: round, client: newClient(workers*2, requestTimeout)}
	for w := range workers {
		ld.wg.Add(1)
		go func() {
			defer ld.wg.Done()
			ld.worker(w, rand.New(rand.NewPCG(m.seed, uint64(round*1000+w+1))))
		}()
	}
	return ld
}

// stop stops issuing requests, waits for the ones in flight (the server is
// dead: they fail at once) and records the operations whose answer was
// lost as having ended by killed.
func (ld *load) stop(killed int64) int64 {
	ld.stopped.Store(true)
	ld.wg.Wait()
	ld.client.CloseIdleConnections()
	for _, rec := range ld.pending {
		rec(killed)
	}
	return ld.ops.Load()
}

// lostAnswer defers recording an operation whose answer was lost until the
// time the server died is known.
func (ld *load) lostAnswer(rec func(killed int64)) {
	ld.lost.Add(1)
	ld.mu.Lock()
	ld.pending = append(ld.pending, rec)
	ld.mu.Unlock()
}

// worker is one client: its own sessions and lock tokens, random operations.
func (ld *load) worker(w int, rng *rand.Rand) {
	tokens := map[string]string{} // lock name -> token of the grant this worker was given
	var mine []*sessModel         // sessions this worker created
	for i := 0; !ld.stopped.Load(); i++ {
		ld.ops.Add(1)
		switch p := rng.IntN(100); {
		case p < 30:
			ld.rateLimit(rng)
		case p < 60:
			ld.lock(w, rng, tokens)
		case p < 75:
			if s := ld.createSession(w, i, rng); s != nil {
				mine = append(mine, s)
			}
		case p < 85:
			if len(mine) > 0 {
				ld.sessionOp(rng, mine[rng.IntN(len(mine))])
			}
		default:
			ld.putEvent(w, i, rng)
		}
	}
}

func (ld *load) post(method, path string, body any) (*reply, int64, int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	callAt := time.Now().UnixMilli()
	r, err := call(ctx, ld.client, method, ld.base+path, body)
	return r, callAt, time.Now().UnixMilli(), err
}

func (ld *load) unexpected(what string, r *reply) {
	ld.m.t.Errorf("round %d: %s: unexpected answer %d %s", ld.round, what, r.Status, r.Body)
}

// overloaded reports whether r is a 503: no effect (api.md).
func (ld *load) overloaded(r *reply) bool {
	if r.Status != http.StatusServiceUnavailable {
		return false
	}
	if r.Header.Get("Retry-After") == "" {
		ld.m.t.Errorf("503 without Retry-After: %s", r.Body)
	}
	ld.m.mu.Lock()
	ld.m.stats.overloaded++
	ld.m.mu.Unlock()
	return true
}

func (ld *load) rateLimit(rng *rand.Rand) {
	key := rlKeys[rng.IntN(len(rlKeys))]
	limit := rlLimit(key)
	cost := int64(1)
	if limit == bigLimit {
		cost = 1 + rng.Int64N(3)
	}
	r, _, _, err := ld.post("POST", "/v1/ratelimit/"+key+"/check", map[string]any{"limit": limit, "window_ms": rlWindowMS, "cost": cost})
	m := ld.m
	if err != nil {
		ld.lostAnswer(func(int64) {
			m.mu.Lock()
			m.rl[key].pending += cost
			m.mu.Unlock()
		})
		return
	}
	switch {
	case r.Status == http.StatusOK:
		m.mu.Lock()
		m.rl[key].acked += cost
		m.stats.rlAllowed++
		if m.rl[key].acked > limit {
			m.t.Errorf("rate limit %s: %d allowed, over the limit %d", key, m.rl[key].acked, limit)
		}
		m.mu.Unlock()
	case r.Status == http.StatusTooManyRequests && r.errorCode() == "rate_limited" && r.Header.Get("Retry-After") != "":
		m.mu.Lock()
		m.stats.rlDenied++
		m.mu.Unlock()
	case ld.overloaded(r):
	default:
		ld.unexpected("rate limit check", r)
	}
}

func (ld *load) lock(w int, rng *rand.Rand, tokens map[string]string) {
	name := lockNames[rng.IntN(len(lockNames))]
	tok := tokens[name]
	var in lockIn
	var body map[string]any
	switch p := rng.IntN(100); {
	case tok != "" && p < 40:
		in = lockIn{Kind: "renew", Token: tok, TTL: 200 + rng.Int64N(2000)}
		body = map[string]any{"token": tok, "ttl_ms": in.TTL}
	case tok != "" && p < 80:
		in = lockIn{Kind: "release", Token: tok}
		body = map[string]any{"token": tok}
	case tok != "" && p < 85, tok == "" && p < 25:
		in = lockIn{Kind: "get"}
	default:
		in = lockIn{Kind: "acquire", TTL: 200 + rng.Int64N(2000)}
		if rng.IntN(2) == 0 {
			in.Wait = 50 + rng.Int64N(500)
		}
		body = map[string]any{"ttl_ms": in.TTL, "wait_ms": in.Wait, "owner": fmt.Sprintf("w%d", w)}
	}
	method, path := "POST", "/v1/locks/"+name+"/"+in.Kind
	if in.Kind == "get" {
		method, path, body = "GET", "/v1/locks/"+name, nil
	}
	var r *reply
	var err error
	if body == nil {
		r, in.Call, in.Ret, err = ld.post(method, path, nil)
	} else {
		r, in.Call, in.Ret, err = ld.post(method, path, body)
	}
	if in.Kind == "release" {
		delete(tokens, name)
	}
	if err != nil {
		ld.lostAnswer(func(killed int64) {
			in.Ret = max(killed, in.Call)
			ld.m.recordLock(lockOp{Name: name, Client: w, In: in, Out: lockOut{Result: resUnknown}})
		})
		if in.Kind == "renew" {
			delete(tokens, name)
		}
		return
	}
	out, ok := ld.m.lockAnswer(in, r)
	if !ok {
		ld.unexpected(in.Kind+" "+name, r)
		return
	}
	switch {
	case in.Kind == "acquire" && out.Result == resOK:
		tokens[name] = out.Token
	case out.Result == resNotOwner:
		delete(tokens, name)
	}
	ld.m.recordLock(lockOp{Name: name, Client: w, In: in, Out: out})
}

// lockAnswer decodes the answer to a lock operation.
func (m *model) lockAnswer(in lockIn, r *reply) (lockOut, bool) {
	switch {
	case r.Status == http.StatusServiceUnavailable:
		return lockOut{Result: resNone}, r.Header.Get("Retry-After") != ""
	case r.Status == http.StatusConflict && r.errorCode() == "lock_held" && in.Kind == "acquire":
		return lockOut{Result: resHeld}, true
	case r.Status == http.StatusConflict && r.errorCode() == "not_owner" && (in.Kind == "renew" || in.Kind == "release"):
		return lockOut{Result: resNotOwner}, true
	case r.Status != http.StatusOK:
		return lockOut{}, false
	}
	var b struct {
		Token    string `json:"token"`
		Fencing  int64  `json:"fencing"`
		Exp      *int64 `json:"expires_at_ms"`
		Held     bool   `json:"held"`
		Released bool   `json:"released"`
	}
	if err := r.decode(&b); err != nil {
		return lockOut{}, false
	}
	out := lockOut{Result: resOK, Token: b.Token, Fencing: b.Fencing, Held: b.Held}
	if b.Exp != nil {
		out.Exp = *b.Exp
	}
	switch in.Kind {
	case "acquire":
		return out, b.Token != "" && b.Fencing > 0 && b.Exp != nil
	case "renew":
		return out, b.Exp != nil
	case "release":
		return out, b.Released
	}
	return out, b.Held == (b.Exp != nil)
}

func (m *model) recordLock(op lockOp) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lockOps[op.Name] = append(m.lockOps[op.Name], op)
	if op.Out.Result == resOK && op.In.Kind == "acquire" {
		m.stats.grants++
		m.maxFence[op.Name] = max(m.maxFence[op.Name], op.Out.Fencing)
	}
}

func (ld *load) createSession(w, i int, rng *rand.Rand) *sessModel {
	s := &sessModel{user: users[rng.IntN(len(users))], data: fmt.Sprintf(`{"w":%d,"r":%d,"i":%d}`, w, ld.round, i)}
	r, _, _, err := ld.post("POST", "/v1/sessions", map[string]any{"user_id": s.user, "data": json.RawMessage(s.data)})
	if err != nil {
		ld.lost.Add(1)
		return nil // an unacknowledged session may or may not exist: nothing to check
	}
	if ld.overloaded(r) {
		return nil
	}
	var b struct {
		ID     string `json:"id"`
		UserID string `json:"user_id"`
	}
	if r.Status != http.StatusCreated || r.decode(&b) != nil || b.ID == "" || b.UserID != s.user {
		ld.unexpected("create session", r)
		return nil
	}
	s.id = b.ID
	ld.m.mu.Lock()
	ld.m.sessions = append(ld.m.sessions, s)
	ld.m.stats.sessions++
	ld.m.mu.Unlock()
	return s
}

// sessionOp reads or deletes one of the worker's own sessions (no other
// worker touches it, so the answer is determined).
func (ld *load) sessionOp(rng *rand.Rand, s *sessModel) {
	m := ld.m
	m.mu.Lock()
	state := s.state
	m.mu.Unlock()
	if rng.IntN(2) == 0 {
		r, _, _, err := ld.post("GET", "/v1/sessions/"+url.PathEscape(s.id), nil)
		if err != nil || ld.overloaded(r) {
			return
		}
		m.mu.Lock()
		m.checkSession(s, r, fmt.Sprintf("round %d, during the load", ld.round))
		m.mu.Unlock()
		return
	}
	if state == sessDeleted {
		return
	}
	r, _, _, err := ld.post("DELETE", "/v1/sessions/"+url.PathEscape(s.id), nil)
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case err != nil:
		s.state = sessDeleting
		ld.lost.Add(1)
	case r.Status == http.StatusNoContent:
		if s.state == sessDeleted {
			m.t.Errorf("session %s deleted twice", s.id)
		}
		s.state = sessDeleted
		m.stats.deletes++
	case r.Status == http.StatusNotFound && s.state == sessDeleting:
		s.state = sessDeleted
	case r.Status == http.StatusNotFound:
		m.t.Errorf("round %d: DELETE of acknowledged session %s: 404 (lost)", ld.round, s.id)
	case ld.overloaded(r):
	default:
		ld.unexpected("delete session", r)
	}
}

// checkSession checks a GET of s against the model and settles a lost
// delete. m.mu is held.
func (m *model) checkSession(s *sessModel, r *reply, when string) {
	switch r.Status {
	case http.StatusOK:
		var b struct {
			ID     string          `json:"id"`
			UserID string          `json:"user_id"`
			Data   json.RawMessage `json:"data"`
		}
		if err := r.decode(&b); err != nil || b.ID != s.id || b.UserID != s.user || !jsonEqual(b.Data, s.data) {
			m.t.Errorf("%s: session %s is %s, want user %s data %s", when, s.id, r.Body, s.user, s.data)
		}
		switch s.state {
		case sessDeleted:
			m.t.Errorf("%s: session %s exists, but its deletion was acknowledged", when, s.id)
		case sessDeleting:
			s.state = sessAlive // the lost delete had no effect
		}
	case http.StatusNotFound:
		switch s.state {
		case sessAlive:
			m.t.Errorf("%s: acknowledged session %s (user %s) is gone", when, s.id, s.user)
		case sessDeleting:
			s.state = sessDeleted
		}
	default:
		m.t.Errorf("%s: GET session %s: %d %s", when, s.id, r.Status, r.Body)
	}
}

func jsonEqual(a json.RawMessage, b string) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal([]byte(b), &y) == nil && fmt.Sprint(x) == fmt.Sprint(y)
}

func (ld *load) putEvent(w, i int, rng *rand.Rand) {
	sched := scheds[rng.IntN(len(scheds))]
	id := fmt.Sprintf("r%d-w%d-%d", ld.round, w, i)
	runAt := time.Now().UnixMilli() - 2000 + rng.Int64N(5000) // up to 2 s ago, up to 3 s ahead
	key := idempotencyKey(sched, id, runAt)
	ev := &eventModel{sched: sched, id: id, runAt: runAt}
	m := ld.m
	m.evMu.Lock()
	m.events[key] = ev // before the PUT: the webhook may be called before the answer arrives
	m.evMu.Unlock()
	r, _, _, err := ld.post("PUT", "/v1/schedulers/"+sched+"/events/"+id,
		map[string]any{"run_at_ms": runAt, "target": "hook", "payload": map[string]any{"key": key}})
	if err != nil {
		ld.lost.Add(1)
		return
	}
	if ld.overloaded(r) {
		return
	}
	var b struct {
		ID      string `json:"id"`
		RunAtMS int64  `json:"run_at_ms"`
	}
	if r.Status != http.StatusOK || r.decode(&b) != nil || b.ID != id || b.RunAtMS != runAt {
		ld.unexpected("put event", r)
		return
	}
	m.evMu.Lock()
	ev.acked = true
	m.scheduled++
	m.evMu.Unlock()
}

// verify checks the restarted server against the model; full checks every
// session (else the recent ones and a sample).
func (m *model) verify(base string, round int, full bool) {
	t := m.t
	c := newClient(8, 30*time.Second)
	defer c.CloseIdleConnections()
	when := fmt.Sprintf("after restart %d", round)

	m.mu.Lock()
	defer m.mu.Unlock()
	for _, key := range rlKeys {
		k, limit := m.rl[key], rlLimit(key)
		r := mustCall(t, c, "POST", base+"/v1/ratelimit/"+key+"/check", map[string]any{"limit": limit, "window_ms": rlWindowMS, "cost": 1})
		switch r.Status {
		case http.StatusOK:
			var b struct{ Remaining int64 }
			if err := r.decode(&b); err != nil {
				t.Fatal(err)
			}
			used := limit - b.Remaining - 1
			if used < k.acked {
				t.Errorf("%s: rate limit %s counts %d allowed in the window, but %d were acknowledged (under-counted)", when, key, used, k.acked)
			}
			if used > k.acked+k.pending {
				t.Errorf("%s: rate limit %s counts %d, more than the %d acknowledged plus %d unanswered", when, key, used, k.acked, k.pending)
			}
			k.acked, k.pending = used+1, 0
		case http.StatusTooManyRequests:
			if k.acked+k.pending < limit {
				t.Errorf("%s: rate limit %s denies, but only %d (+%d unanswered) of %d were allowed", when, key, k.acked, k.pending, limit)
			}
			k.acked, k.pending = limit, 0
		default:
			t.Errorf("%s: rate limit %s: %d %s", when, key, r.Status, r.Body)
		}
	}

	for _, name := range lockNames {
		in := lockIn{Kind: "get", Call: time.Now().UnixMilli()}
		r := mustCall(t, c, "GET", base+"/v1/locks/"+name, nil)
		in.Ret = time.Now().UnixMilli()
		out, ok := m.lockAnswer(in, r)
		if !ok {
			t.Errorf("%s: GET lock %s: %d %s", when, name, r.Status, r.Body)
			continue
		}
		if out.Fencing < m.maxFence[name] {
			t.Errorf("%s: lock %s reports fencing %d, but %d was granted before", when, name, out.Fencing, m.maxFence[name])
		}
		m.lockOps[name] = append(m.lockOps[name], lockOp{Name: name, Client: workers, In: in, Out: out})
	}

	var check []*sessModel
	for i, s := range m.sessions {
		if full || i >= len(m.sessions)-300 || i%17 == round%17 {
			check = append(check, s)
		}
	}
	type got struct {
		s *sessModel
		r *reply
	}
	results := make(chan got, len(check))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for _, s := range check {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			r, err := call(ctx, c, "GET", base+"/v1/sessions/"+url.PathEscape(s.id), nil)
			if err != nil {
				t.Errorf("%s: GET session: %v", when, err)
				return
			}
			results <- got{s, r}
		}()
	}
	wg.Wait()
	close(results)
	for g := range results {
		m.checkSession(g.s, g.r, when)
	}
	if full {
		for _, u := range users {
			r := mustCall(t, c, "GET", base+"/v1/users/"+u+"/sessions", nil)
			var b struct {
				Sessions []struct {
					ID string `json:"id"`
				} `json:"sessions"`
			}
			if err := r.decode(&b); err != nil || r.Status != http.StatusOK {
				t.Errorf("%s: list sessions of %s: %d %s", when, u, r.Status, r.Body)
				continue
			}
			listed := map[string]bool{}
			for _, s := range b.Sessions {
				listed[s.ID] = true
			}
			for _, s := range m.sessions {
				if s.user != u {
					continue
				}
				if s.state == sessAlive && !listed[s.id] {
					t.Errorf("%s: session %s missing from the list of user %s", when, s.id, u)
				}
				if s.state == sessDeleted && listed[s.id] {
					t.Errorf("%s: deleted session %s listed for user %s", when, s.id, u)
				}
			}
		}
	}

	// An acknowledged event not delivered yet must still be scheduled: a
	// one-shot event is gone only once delivered (the webhook records a
	// delivery before it answers).
	m.evMu.Lock()
	var waiting []*eventModel
	for _, ev := range m.events {
		if ev.acked && ev.deliveries == 0 {
			waiting = append(waiting, ev)
		}
	}
	m.evMu.Unlock()
	for _, ev := range waiting {
		key := idempotencyKey(ev.sched, ev.id, ev.runAt)
		r := mustCall(t, c, "GET", base+"/v1/schedulers/"+ev.sched+"/events/"+ev.id, nil)
		m.evMu.Lock()
		delivered := ev.deliveries > 0
		m.evMu.Unlock()
		switch {
		case r.Status == http.StatusOK:
		case r.Status == http.StatusNotFound && delivered:
		case r.Status == http.StatusNotFound:
			t.Errorf("%s: acknowledged event %s is gone without being delivered", when, key)
		default:
			t.Errorf("%s: GET event %s: %d %s", when, key, r.Status, r.Body)
		}
	}
}

// waitDeliveries waits until every acknowledged event was delivered.
func (m *model) waitDeliveries(timeout time.Duration) {
	deadline := time.After(timeout)
	for {
		m.evMu.Lock()
		var missing []string
		for key, ev := range m.events {
			if ev.acked && ev.deliveries == 0 {
				missing = append(missing, key)
			}
		}
		delivered := m.delivered
		m.evMu.Unlock()
		if len(missing) == 0 {
			return
		}
		select {
		case <-delivered:
		case <-deadline:
			slices.Sort(missing)
			if len(missing) > 10 {
				missing = missing[:10]
			}
			m.t.Errorf("acknowledged events never delivered within %v (first %d): %s", timeout, len(missing), strings.Join(missing, ", "))
			return
		}
	}
}

// checkLocks checks mutual exclusion and fencing from the acknowledged
// grants, and each lock's history for linearizability.
func (m *model) checkLocks() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, name := range lockNames {
		ops := m.lockOps[name]
		for _, v := range checkMutualExclusion(name, ops) {
			m.t.Error(v)
		}
		start := time.Now()
		viz := filepath.Join(os.TempDir(), fmt.Sprintf("durable-torture-%d-lock-%s.html", m.seed, name))
		if msg, ok := checkLockHistory(name, ops, viz, 60*time.Second); !ok {
			m.t.Error(msg)
		} else {
			m.t.Logf("lock %s: %d operations linearizable (checked in %v)", name, len(ops), time.Since(start).Round(time.Millisecond))
		}
	}
}

func (m *model) summary() string {
	m.mu.Lock()
	s := m.stats
	m.mu.Unlock()
	m.evMu.Lock()
	defer m.evMu.Unlock()
	return fmt.Sprintf("%d rate-limit checks allowed and %d denied, %d lock grants, %d sessions created and %d deleted, %d events scheduled and %d deliveries, %d answers 503",
		s.rlAllowed, s.rlDenied, s.grants, s.sessions, s.deletes, m.scheduled, m.deliveries, s.overloaded)
}
