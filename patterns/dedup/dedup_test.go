package dedup_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/durableobjects/durable"
	"github.com/durableobjects/durable/patterns/dedup"
)

var ctx = context.Background()

func open(t *testing.T, opts dedup.Options) (*durable.Runtime, *dedup.Client) {
	t.Helper()
	rt := durable.NewRuntime(t.TempDir())
	c, err := dedup.Register(rt, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := rt.Close(context.Background()); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return rt, c
}

// waitFor polls cond until it holds, failing after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestCoalescesAndDoesNotCache(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	open1 := func() { once.Do(func() { close(release) }) }
	t.Cleanup(open1)
	var hits atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := hits.Add(1)
		if r.URL.Query().Get("block") != "" {
			<-release
		}
		w.Header().Set("X-Hit", fmt.Sprint(n))
		w.Header().Set("Connection", "X-Gone")
		w.Header().Set("X-Gone", "1")
		fmt.Fprintf(w, "body %d", n)
	}))
	defer up.Close()
	_, c := open(t, dedup.Options{Upstreams: map[string]string{"up": up.URL}})

	const n = 10
	type result struct {
		resp *http.Response
		err  error
	}
	results := make(chan result, n)
	for range n {
		go func() {
			resp, err := c.Fetch(ctx, "up", "p", "block=1")
			results <- result{resp, err}
		}()
	}
	waitFor(t, "all callers to join", func() bool {
		w, err := c.Waiting(ctx, "up", "p", "block=1")
		return err == nil && w == n
	})
	open1()
	for range n {
		r := <-results
		if r.err != nil {
			t.Fatal(r.err)
		}
		if r.resp.StatusCode != 200 || r.resp.Header.Get("X-Hit") != "1" || r.resp.Header.Get("X-Gone") != "" ||
			r.resp.Header.Get("Content-Length") != "" || r.resp.ContentLength != 6 || readAll(t, r.resp) != "body 1" {
			t.Fatalf("response %d %v", r.resp.StatusCode, r.resp.Header)
		}
	}
	if hits.Load() != 1 {
		t.Fatalf("%d upstream hits, want 1", hits.Load())
	}
	// Once answered, nothing is kept: the next request goes upstream.
	resp, err := c.Fetch(ctx, "up", "p", "block=1")
	if err != nil || readAll(t, resp) != "body 2" {
		t.Fatalf("second fetch: %v", err)
	}
	if w, _ := c.Waiting(ctx, "up", "p", "block=1"); w != 0 {
		t.Fatalf("%d still waiting", w)
	}
}

func TestBodyLimit(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var n int
		fmt.Sscan(r.URL.Query().Get("n"), &n)
		if r.URL.Query().Get("chunked") != "" {
			w.(http.Flusher).Flush() // no Content-Length
		}
		io.WriteString(w, strings.Repeat("x", n))
	}))
	defer up.Close()
	_, c := open(t, dedup.Options{Upstreams: map[string]string{"up": up.URL}, MaxBody: 100})
	for _, chunked := range []string{"", "&chunked=1"} {
		resp, err := c.Fetch(ctx, "up", "x", "n=100"+chunked)
		if err != nil || len(readAll(t, resp)) != 100 {
			t.Fatalf("100 bytes: %v", err)
		}
		if _, err := c.Fetch(ctx, "up", "x", "n=101"+chunked); !errors.Is(err, dedup.ErrUpstream) {
			t.Fatalf("101 bytes: %v, want ErrUpstream", err)
		}
	}
}

func TestUpstreamFailures(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://user:hunter2@" + ln.Addr().String()
	ln.Close()
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	defer slow.Close()
	_, c := open(t, dedup.Options{Upstreams: map[string]string{"dead": dead, "slow": slow.URL}, Timeout: 200 * time.Millisecond})

	_, err = c.Fetch(ctx, "dead", "x", "")
	if !errors.Is(err, dedup.ErrUpstream) {
		t.Fatalf("unreachable: %v, want ErrUpstream", err)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error shows the upstream's credentials: %v", err)
	}
	if _, err := c.Fetch(ctx, "slow", "x", ""); !errors.Is(err, dedup.ErrUpstream) {
		t.Fatalf("timeout: %v, want ErrUpstream", err)
	}
	if _, err := c.Fetch(ctx, "nope", "x", ""); !errors.Is(err, dedup.ErrUnknownUpstream) {
		t.Fatalf("unknown: %v", err)
	}
	if _, err := c.Fetch(ctx, "dead", "%2e%2e/x", ""); !errors.Is(err, dedup.ErrInvalidPath) {
		t.Fatalf("dot segment: %v", err)
	}
}

func TestRedirectsAreForwardedNotFollowed(t *testing.T) {
	var followed atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/there" {
			followed.Add(1)
			return
		}
		http.Redirect(w, r, "/there", http.StatusFound)
	}))
	defer up.Close()
	_, c := open(t, dedup.Options{Upstreams: map[string]string{"up": up.URL}})
	resp, err := c.Fetch(ctx, "up", "here", "")
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	if resp.StatusCode != 302 || resp.Header.Get("Location") != "/there" || followed.Load() != 0 {
		t.Fatalf("%d %q, followed %d", resp.StatusCode, resp.Header.Get("Location"), followed.Load())
	}
}

func TestIdleObjectsAreEvictedWithNothingLost(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer up.Close()
	rt, c := open(t, dedup.Options{Upstreams: map[string]string{"up": up.URL}})
	for i := range 5 {
		resp, err := c.Fetch(ctx, "up", fmt.Sprint("k", i), "")
		if err != nil || readAll(t, resp) != "ok" {
			t.Fatal(err)
		}
	}
	if rt.Stats().Commits != 0 {
		t.Fatalf("dedup objects committed writes: %+v", rt.Stats())
	}
}

func BenchmarkFetch(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }))
	defer up.Close()
	rt := durable.NewRuntime(b.TempDir())
	c, err := dedup.Register(rt, dedup.Options{Upstreams: map[string]string{"up": up.URL}})
	if err != nil {
		b.Fatal(err)
	}
	if err := rt.Open(); err != nil {
		b.Fatal(err)
	}
	defer rt.Close(context.Background())
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := c.Fetch(ctx, "up", "x", "")
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
		}
	})
}
