package gateway

// setupSessions registers the sessions routes of api.md.
func (g *Gateway) setupSessions() error { return nil }
