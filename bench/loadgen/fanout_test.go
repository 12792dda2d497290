package loadgen

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/durableobjects/durable"
	"github.com/durableobjects/durable/gateway"
)

// startDurable serves a real gateway on a real runtime over loopback, as
// `durable serve` does, with its data in a temp dir. docs-fanout needs the
// WebSocket side of /v1/docs, which the fake server does not have.
func startDurable(t *testing.T, token string) string {
	t.Helper()
	rt := durable.NewRuntime(t.TempDir())
	rt.StubRetry = durable.Retry{Attempts: 1}
	rt.MaxWebSocketMessage = gateway.DocsMaxBody
	g, err := gateway.New(rt, gateway.Config{Token: token})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Open(); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		rt.Close(context.Background())
		t.Fatal(err)
	}
	srv := &http.Server{Handler: g, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		g.BeginShutdown()
		srv.Shutdown(ctx)
		g.Close(ctx)
		if err := rt.Close(ctx); err != nil {
			t.Errorf("runtime close: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

// withFanout runs docs-fanout with n clients and hands its state to seen.
func withFanout(t *testing.T, n int, seen func(*fanout)) {
	oldN, oldHook := fanoutClients, fanoutPrepared
	fanoutClients, fanoutPrepared = n, seen
	t.Cleanup(func() { fanoutClients, fanoutPrepared = oldN, oldHook })
}

func TestDocsFanoutOnDurable(t *testing.T) {
	const clients, ops = 50, 120
	var f *fanout
	withFanout(t, clients, func(x *fanout) { f = x })
	url := startDurable(t, "tok")
	res, err := Run(t.Context(), Config{BaseURL: url, Token: "tok", Conns: 4, Ops: ops, Scenario: "docs-fanout", Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	if res.Ops != ops || res.FailedOps != 0 || res.Errors() != 0 {
		t.Fatalf("ops %d (want %d), failed %d, errors %d; first: %s", res.Ops, ops, res.FailedOps, res.Errors(), res.FirstError)
	}
	if res.Requests != ops || res.Statuses[http.StatusOK] != ops {
		t.Errorf("requests %d, statuses %v; want %d PUTs answered 200", res.Requests, res.Statuses, ops)
	}
	if f == nil || len(f.clients) != clients {
		t.Fatalf("scenario state not seen, or not %d clients", clients)
	}
	// A new document: the ops made versions 1..ops, and each reader checks
	// that versions only grow, so ops edits ending at version ops are all
	// of them, in order. Run has closed the sockets and waited for the
	// readers, so their counts are final.
	for i, c := range f.clients {
		if c.edits != ops || c.last != ops {
			t.Errorf("client %d received %d edits up to version %d, want %d up to %d", i, c.edits, c.last, ops, ops)
		}
	}
	if len(f.pending) != 0 {
		t.Errorf("%d versions still pending after the run", len(f.pending))
	}
	if res.Latency.P50 <= 0 || res.Latency.P99 < res.Latency.P50 {
		t.Errorf("latency %+v", res.Latency)
	}
}

// A socket that ends during the run fails the ops that follow, and the run
// ends on time and says why instead of waiting for a delivery.
func TestDocsFanoutSocketLost(t *testing.T) {
	withFanout(t, 10, func(f *fanout) { f.conns[3].CloseNow() })
	url := startDurable(t, "")
	start := time.Now()
	res, err := Run(t.Context(), Config{BaseURL: url, Conns: 2, Duration: 300 * time.Millisecond, Scenario: "docs-fanout"})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("run took %v", took)
	}
	if res.Ops == 0 || res.FailedOps != res.Ops {
		t.Errorf("ops %d, failed %d: want every op failed", res.Ops, res.FailedOps)
	}
	if !strings.Contains(res.FirstError, "socket 3") {
		t.Errorf("FirstError = %q, want socket 3's failure", res.FirstError)
	}
}

func TestDocsFanoutPrepareFails(t *testing.T) {
	withFanout(t, 5, nil)
	_, srv := newFakeServer(t) // has no /v1/docs
	if _, err := Run(t.Context(), Config{BaseURL: srv.URL, Conns: 1, Ops: 1, Scenario: "docs-fanout"}); err == nil || !strings.Contains(err.Error(), "WebSocket") {
		t.Fatalf("err = %v, want a failure to open the WebSockets", err)
	}
}
