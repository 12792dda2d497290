package redispeer

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// startRedis starts a real redis-server listening on a unix socket in a
// fresh directory and returns a client for it. It skips the test only if
// redis-server is not installed (bench/run.sh installs it).
func startRedis(t *testing.T) *redis.Client {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Log("SKIPPED: redis-server is not installed (apt-get install redis-server, or run bench/run.sh)")
		t.Skip("redis-server not installed")
	}
	// A short directory: unix socket paths are limited to ~108 bytes.
	dir, err := os.MkdirTemp("", "redispeer")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "redis.sock")
	cmd := exec.Command(bin, "--port", "0", "--unixsocket", sock, "--dir", dir,
		"--save", "", "--appendonly", "no", "--daemonize", "no")
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	rdb := redis.NewClient(&redis.Options{Network: "unix", Addr: sock})
	t.Cleanup(func() { rdb.Close() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := rdb.Ping(t.Context()).Err()
		if err == nil {
			return rdb
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server did not come up: %v", err)
		}
		time.Sleep(10 * time.Millisecond) // polling for start-up, not a timing assumption
	}
}

// clock is a settable clock for session timestamps, starting at real time.
type clock struct{ offset atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) advance(d time.Duration) { c.offset.Add(int64(d)) }

// peer is a Server on a real Redis behind a real HTTP server.
type peer struct {
	t     *testing.T
	srv   *Server
	url   string
	clock *clock
}

func newPeer(t *testing.T, cfg Config) *peer {
	rdb := startRedis(t)
	c := &clock{}
	cfg.Now = c.now
	s := New(rdb, cfg)
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	return &peer{t: t, srv: s, url: hs.URL, clock: c}
}

// do sends a request and returns the status, the decoded JSON body (nil if
// empty) and the response headers.
func (p *peer) do(method, path, body string, hdr ...string) (int, map[string]any, http.Header) {
	p.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = bytes.NewBufferString(body)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, p.url+path, rd)
	if err != nil {
		p.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if len(data) == 0 {
		return resp.StatusCode, nil, resp.Header
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		p.t.Errorf("%s %s: Content-Type %q, want application/json", method, path, ct)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		p.t.Fatalf("%s %s: body is not a JSON object: %q", method, path, data)
	}
	return resp.StatusCode, m, resp.Header
}

// errCode returns the error code of an api.md error body.
func errCode(m map[string]any) string {
	e, _ := m["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}
