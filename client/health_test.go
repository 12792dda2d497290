package client_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/durableobjects/durable/client"
)

// metric returns the value of an unlabelled metric of the server.
func metric(t *testing.T, c *client.Client, name string) float64 {
	t.Helper()
	text, err := c.Metrics(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(text) {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("metric %s: %q", name, line)
			}
			return f
		}
	}
	t.Fatalf("no metric %s in\n%s", name, text)
	return 0
}

func TestHealthzMetricsAndToken(t *testing.T) {
	s := newServer(t, withToken("s3cret"))
	c := newClient(t, s)
	ctx := testCtx(t)
	// Neither needs the token.
	if err := c.Healthz(ctx); err != nil {
		t.Fatal(err)
	}
	if v := metric(t, c, "durable_objects_active"); v < 0 {
		t.Fatalf("objects active %v", v)
	}
	// /v1 does.
	_, err := c.GetLock(ctx, "l")
	var e *client.Error
	if !errors.Is(err, client.ErrUnauthorized) || !errors.As(err, &e) || e.Status != 401 || e.RequestID == "" {
		t.Fatalf("without token: %v", err)
	}
	c.Token = "wrong"
	if _, err := c.GetLock(ctx, "l"); !errors.Is(err, client.ErrUnauthorized) {
		t.Fatalf("wrong token: %v", err)
	}
	c.Token = "s3cret"
	if _, err := c.GetLock(ctx, "l"); err != nil {
		t.Fatalf("with token: %v", err)
	}
	d, err := c.DialDoc(ctx, "d")
	if err != nil {
		t.Fatalf("WebSocket with token: %v", err)
	}
	d.Close()
	c.Token = ""
	if _, err := c.DialDoc(ctx, "d"); !errors.Is(err, client.ErrUnauthorized) {
		t.Fatalf("WebSocket without token: %v", err)
	}
}

func TestNew(t *testing.T) {
	for _, u := range []string{"", "127.0.0.1:8080", "ftp://h", "http://", "http://h?x=1", "http://u:p@h"} {
		if _, err := client.New(u); err == nil {
			t.Errorf("New(%q) accepted", u)
		}
	}
	c, err := client.New("http://h:1/prefix/")
	if err != nil || c.BaseURL() != "http://h:1/prefix" {
		t.Fatalf("New with a prefix: %v %v", c, err)
	}
}

// A server behind a reverse proxy under a path prefix.
func TestBaseURLPrefix(t *testing.T) {
	s := newServer(t)
	target, _ := url.Parse(s.URL)
	front := httptest.NewServer(http.StripPrefix("/durable", httputil.NewSingleHostReverseProxy(target)))
	t.Cleanup(front.Close)
	c, err := client.New(front.URL + "/durable/")
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	if err := c.Healthz(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AcquireLock(ctx, "a/b", client.AcquireOptions{}); err != nil {
		t.Fatal(err)
	}
	if st, err := c.GetLock(ctx, "a/b"); err != nil || !st.Held {
		t.Fatalf("lock through the proxy: %+v, %v", st, err)
	}
	d, err := c.DialDoc(ctx, "doc")
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
}
