package client

import (
	"context"
	"fmt"
	"net/http"
)

// Healthz checks that the server is up: GET /healthz answers 200
// {"status":"ok"}. Retried after any retryable failure (a read).
func (c *Client) Healthz(ctx context.Context) error {
	var out struct {
		Status string `json:"status"`
	}
	r := &request{method: http.MethodGet, path: "/healthz", safety: idempotent}
	if err := c.call(ctx, r, http.StatusOK, &out); err != nil {
		return err
	}
	if out.Status != "ok" {
		return fmt.Errorf("durable: healthz status %q", out.Status)
	}
	return nil
}

// Metrics returns the server's metrics in the Prometheus text format:
// GET /metrics. Retried after any retryable failure (a read).
func (c *Client) Metrics(ctx context.Context) (string, error) {
	r := &request{method: http.MethodGet, path: "/metrics", safety: idempotent,
		header: http.Header{"Accept": {"text/plain"}}}
	resp, err := c.send(ctx, r)
	if err != nil {
		return "", err
	}
	if resp.status != http.StatusOK {
		return "", resp.err()
	}
	return string(resp.body), nil
}
