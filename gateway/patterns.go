package gateway

// patterns holds the typed clients of the built-in objects; each route
// file sets up its own.
type patterns struct{}
