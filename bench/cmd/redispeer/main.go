// Command redispeer serves the rate-limit, lock and session routes of the
// durable HTTP API from Redis, as a benchmark peer for `durable serve`.
//
//	redispeer --addr 127.0.0.1:0 --redis 127.0.0.1:6379
//
// It prints "listening on http://HOST:PORT" on stdout once it accepts
// connections, and shuts down cleanly on SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/durableobjects/durable/bench/redispeer"
	"github.com/redis/go-redis/v9"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "redispeer:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("redispeer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8081", "HTTP listen address")
	redisAddr := fs.String("redis", "127.0.0.1:6379", "Redis address: host:port, or the path of a unix socket")
	token := fs.String("token", "", "require Authorization: Bearer <token> on /v1 routes")
	pool := fs.Int("pool", 128, "Redis connection pool size")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: redispeer [flags]\n\nexample:\n  redispeer --addr 127.0.0.1:0 --redis 127.0.0.1:6379\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	opts := &redis.Options{Addr: *redisAddr, PoolSize: *pool}
	if strings.HasPrefix(*redisAddr, "/") {
		opts.Network = "unix"
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	if err := rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis at %s: %w", *redisAddr, err)
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	peer := redispeer.New(rdb, redispeer.Config{Token: *token, Logger: log})
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: peer, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "listening on http://%s\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	peer.Shutdown()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return err
	}
	<-errc
	return nil
}
