// Package collab is the built-in collaborative document: versioned content
// edited over hibernatable WebSockets.
//
// Each document is one object of the class Class, named by the document's
// id. It stores its content and version (KV keys "content" and "version";
// a document never written has no file and reads as "" at version 0) and
// speaks the protocol of api.md ("Collaborative documents") on the
// WebSockets it accepts: an init message on connect, edits checked against
// an optional base_version, an ack to the sender and the new content to
// every other socket. HTTP reads and writes go through Client.Get and
// Client.Put; a Put is broadcast to every socket.
//
// The object keeps nothing in memory: the runtime holds the sockets, so a
// document with only idle sockets is evicted and built again by its next
// message, and the messages {"type":"ping"} are answered with
// {"type":"pong"} by the runtime without waking it.
package collab
