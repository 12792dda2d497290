package gateway

// setupObjects registers the objects routes of api.md.
func (g *Gateway) setupObjects() error { return nil }
