package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"strconv"
	"time"
)

// servePprof serves the net/http/pprof handlers on addr, which must be a
// loopback address: profiles show code paths and memory, and the CPU
// profile endpoint costs the server while it runs. It returns a function
// that stops the listener.
func servePprof(addr string, log *slog.Logger) (stop func(), err error) {
	addr, err = pprofAddr(addr)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--pprof: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	log.Info("pprof listening", "addr", ln.Addr().String())
	return func() { srv.Close() }, nil
}

// pprofAddr checks a --pprof address and returns the one to listen on: a
// loopback IP and a port, or localhost and a port (listened on as
// 127.0.0.1, whatever the hosts file says).
func pprofAddr(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err == nil {
		_, err = strconv.ParseUint(port, 10, 16)
	}
	if err == nil {
		if host == "localhost" {
			return net.JoinHostPort("127.0.0.1", port), nil
		}
		if ip, perr := netip.ParseAddr(host); perr == nil && ip.IsLoopback() {
			return addr, nil
		}
	}
	return "", fmt.Errorf("--pprof: want a loopback ADDR:PORT such as 127.0.0.1:6060 or localhost:6060, got %q", addr)
}
