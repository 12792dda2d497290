package client_test

import (
	"context"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/durableobjects/durable"
	"github.com/durableobjects/durable/client"
	"github.com/durableobjects/durable/gateway"
)

// server is a real gateway on a real runtime, served over loopback, as
// `durable serve` runs it.
type server struct {
	URL string
	RT  *durable.Runtime
	G   *gateway.Gateway
	srv *http.Server
}

// serverOption changes the runtime or the gateway's config before start.
type serverOption func(*durable.Runtime, *gateway.Config)

func withToken(token string) serverOption {
	return func(_ *durable.Runtime, c *gateway.Config) { c.Token = token }
}

func withWebhook(name, url string) serverOption {
	return func(_ *durable.Runtime, c *gateway.Config) {
		if c.Webhooks == nil {
			c.Webhooks = map[string]string{}
		}
		c.Webhooks[name] = url
	}
}

func withUpstream(name, url string) serverOption {
	return func(_ *durable.Runtime, c *gateway.Config) {
		if c.Upstreams == nil {
			c.Upstreams = map[string]string{}
		}
		c.Upstreams[name] = url
	}
}

// startServer starts a gateway with its data in dir.
func startServer(dir string, opts ...serverOption) (*server, error) {
	rt := durable.NewRuntime(dir)
	rt.StubRetry = durable.Retry{Attempts: 1} // as durable serve runs it
	var cfg gateway.Config
	for _, o := range opts {
		o(rt, &cfg)
	}
	g, err := gateway.New(rt, cfg)
	if err != nil {
		return nil, err
	}
	if err := rt.Open(); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		rt.Close(context.Background())
		return nil, err
	}
	s := &server{URL: "http://" + ln.Addr().String(), RT: rt, G: g,
		srv: &http.Server{Handler: g, ReadHeaderTimeout: 10 * time.Second}}
	go s.srv.Serve(ln)
	return s, nil
}

// Close shuts the server down the way `durable serve` does on SIGTERM.
func (s *server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s.G.BeginShutdown()
	s.srv.Shutdown(ctx)
	s.G.Close(ctx)
	return s.RT.Close(ctx)
}

// newServer starts a gateway for the test and stops it when the test ends.
func newServer(t *testing.T, opts ...serverOption) *server {
	t.Helper()
	s, err := startServer(t.TempDir(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("server close: %v", err)
		}
	})
	return s
}

// newClient returns a client of s.
func newClient(t *testing.T, s *server) *client.Client {
	t.Helper()
	c, err := client.New(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// exampleServer starts a server for an Example (which has no *testing.T).
func exampleServer(opts ...serverOption) (*server, func()) {
	dir, err := os.MkdirTemp("", "durable-client-example")
	if err != nil {
		panic(err)
	}
	s, err := startServer(dir, opts...)
	if err != nil {
		panic(err)
	}
	return s, func() {
		s.Close()
		os.RemoveAll(dir)
	}
}

// ctx returns a context that ends with the test (or after a minute).
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
