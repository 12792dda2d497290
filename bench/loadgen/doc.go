// Package loadgen replays HTTP requests against a server that implements the
// routes of the durable HTTP API (api.md) and reports throughput, latency
// percentiles and errors.
//
// A run opens Conns keep-alive connections through one http.Transport
// (MaxConnsPerHost = MaxIdleConnsPerHost = Conns) and drives them with Conns
// workers, each looping over the operations of a named [Scenario] until the
// run's Duration has passed or its Ops budget is spent. Only loopback targets
// (127.0.0.0/8, ::1, localhost) are accepted: this is a tool for comparing
// servers on one machine, never for loading someone else's.
//
// An operation ("op") is what a scenario counts as one unit of work. For most
// scenarios it is a single HTTP request; for lock-cycle it is an acquire
// followed by a release of the same lock, two requests; for docs-fanout it is
// one PUT of a document and the wait until each of the [FanoutClients]
// WebSocket clients it opened on that document during setup has received the
// new version (the sockets count neither as requests nor as connections of
// Conns; Run closes them when it ends). [Result] reports both ops and
// requests per second; latency percentiles are per op, measured from the
// start of its first request to the end of its last (docs-fanout: to the
// last client's receipt).
//
// Latencies go into a log-linear histogram (HDR style) whose reported
// percentile is never below the true one and at most 0.2 % above it, so
// memory stays bounded however long a run lasts.
//
//	res, err := loadgen.Run(ctx, loadgen.Config{
//		BaseURL:  "http://127.0.0.1:8080",
//		Conns:    16,
//		Duration: 10 * time.Second,
//		Scenario: "ratelimit-one",
//	})
//	fmt.Println(res)
package loadgen
