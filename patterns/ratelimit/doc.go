// Package ratelimit is the built-in rate limiter: one object per key, with
// an exact sliding log and a token bucket (GCRA).
package ratelimit
