// Package durable is a runtime for Durable Objects in Go.
package durable
