// Command durable runs Durable Objects: `durable serve` starts the HTTP
// server with the built-in objects; `durable bench` measures the runtime.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit((&Main{Stdout: os.Stdout, Stderr: os.Stderr}).Run(ctx, os.Args[1:]))
}
