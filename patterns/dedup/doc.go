// Package dedup coalesces identical concurrent GETs to an upstream into one
// upstream request.
package dedup
