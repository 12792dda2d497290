package session

// SetCleanupBatch sets the rows one cleanup run deletes, until the returned
// function restores it. Call it before the runtime opens.
func SetCleanupBatch(n int) (restore func()) {
	old := cleanupBatch
	cleanupBatch = n
	return func() { cleanupBatch = old }
}
