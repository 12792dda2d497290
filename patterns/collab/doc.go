// Package collab is the built-in collaborative document: versioned content
// edited over hibernatable WebSockets.
package collab
