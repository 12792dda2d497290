package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/durableobjects/durable"
	"github.com/durableobjects/durable/gateway"
)

func init() {
	register("serve", "run the HTTP server with the built-in objects", runServe)
}

const serveSynopsis = `Serves the HTTP API (rate limits, locks, sessions, scheduled events, request
coalescing, collaborative documents) from the objects in the data directory.
SIGTERM or SIGINT finishes in-flight requests, commits, and exits 0.`

const serveExample = `  durable serve --addr 127.0.0.1:8080 --data ./data \
      --webhook billing=http://127.0.0.1:9000/hooks/billing \
      --upstream api=http://127.0.0.1:9001/v2
  curl -X POST localhost:8080/v1/ratelimit/user-42/check -d '{"limit":10,"window_ms":60000}'`

// ShutdownTimeout bounds how long shutdown waits for in-flight work.
const ShutdownTimeout = 30 * time.Second

func runServe(ctx context.Context, m *Main, args []string) error {
	fs := m.newFlagSet("serve", serveSynopsis, serveExample)
	addr := fs.String("addr", envOr("DURABLE_ADDR", "127.0.0.1:8080"), "listen address [DURABLE_ADDR]")
	data := fs.String("data", envOr("DURABLE_DATA", "./data"), "data directory [DURABLE_DATA]")
	token := fs.String("token", os.Getenv("DURABLE_TOKEN"), "bearer token required on /v1 requests; unset = no auth [DURABLE_TOKEN]")
	webhooks := namedURLs{}
	fs.Var(webhooks, "webhook", "scheduler target `NAME=URL` (repeatable)")
	upstreams := namedURLs{}
	fs.Var(upstreams, "upstream", "fetch upstream `NAME=URL` (repeatable)")
	idle := fs.Duration("idle-timeout", durable.DefaultIdleTimeout, "evict objects idle this long")
	maxActive := fs.Int("max-active", durable.DefaultMaxActive, "objects kept in memory at most")
	maxQueue := fs.Int("max-queue", durable.DefaultMaxQueue, "events queued per object before 503 overloaded")
	maxBody := fs.Int64("max-body", gateway.DefaultMaxBody, "request body limit in bytes")
	syncMethod := fs.String("sync", "syncfs", "how commits are made durable: syncfs (one syscall per round) or fdatasync (each dirty file)")
	pprofFlag := fs.String("pprof", "", "serve net/http/pprof profiles on this loopback `ADDR` (e.g. 127.0.0.1:6060); unset = off")
	var origins stringList
	fs.Var(&origins, "ws-origin", "browser origin `PATTERN` allowed to open WebSockets besides the server's own host (repeatable; see coder/websocket OriginPatterns)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if *pprofFlag != "" {
		if _, err := pprofAddr(*pprofFlag); err != nil { // before anything opens
			return err
		}
	}
	logw := newLogWriter(m.Stderr)
	defer logw.Close()
	log := slog.New(flushingHandler{newTextHandler(logw), logw})

	rt := durable.NewRuntime(*data)
	rt.Logger = log
	// The HTTP API answers 503 overloaded at once (api.md) and leaves
	// retrying to its clients: no retrying inside the server.
	rt.StubRetry = durable.Retry{Attempts: 1}
	rt.IdleTimeout = *idle
	rt.MaxActive = *maxActive
	rt.MaxQueue = *maxQueue
	// The server's only WebSockets are documents, whose biggest message (a
	// whole document, escaped) fits what a PUT of one may send: a bigger
	// message is refused (1009) before it is buffered.
	rt.MaxWebSocketMessage = gateway.DocsMaxBody
	rt.WebSocketOriginPatterns = origins
	switch *syncMethod {
	case "syncfs":
		rt.SyncMethod = durable.SyncSyncfs
	case "fdatasync":
		rt.SyncMethod = durable.SyncFdatasync
	default:
		return fmt.Errorf("--sync: want syncfs or fdatasync, got %q", *syncMethod)
	}
	g, err := gateway.New(rt, gateway.Config{
		Token: *token, Webhooks: webhooks, Upstreams: upstreams, MaxBody: *maxBody, Logger: log,
	})
	if err != nil {
		return err
	}
	if err := rt.Open(); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		rt.Close(context.Background())
		return err
	}
	if *pprofFlag != "" {
		stop, err := servePprof(*pprofFlag, log)
		if err != nil {
			ln.Close()
			rt.Close(context.Background())
			return err
		}
		defer stop()
	}
	srv := &http.Server{
		Handler:           g,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      90 * time.Second, // above the longest lock wait (60 s)
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("listening", "addr", ln.Addr().String(), "data", *data, "auth", *token != "")
	logw.Flush() // whoever started the server waits for this line
	if m.Ready != nil {
		m.Ready(ln.Addr().String())
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(gateway.JSONProtocolErrors(srv, ln)) }()
	select {
	case err := <-served:
		rt.Close(context.Background())
		return err
	case <-ctx.Done():
	}

	log.Info("shutting down: finishing in-flight requests")
	g.BeginShutdown()
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	errs := []error{srv.Shutdown(sctx)}
	errs = append(errs, g.Close(sctx), rt.Close(sctx))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// namedURLs is a repeatable NAME=URL flag.
type namedURLs map[string]string

func (n namedURLs) String() string {
	var parts []string
	for k, v := range n {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func (n namedURLs) Set(s string) error {
	name, raw, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return fmt.Errorf("want NAME=URL, got %q", s)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%s: want an http or https URL, got %q", name, raw)
	}
	if _, dup := n[name]; dup {
		return fmt.Errorf("%s given twice", name)
	}
	n[name] = raw
	return nil
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(s string) error {
	*l = append(*l, s)
	return nil
}
