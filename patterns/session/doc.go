// Package session is the built-in session store, sharded across objects.
package session
