package sqlstore

import "errors"

// Limits on what one call may store. Cloudflare's SQLite-backed Durable
// Objects cap a key and its value together at 2 MB; here a value may have
// 2 MiB by itself, and keys keep the 2 KiB cap of Cloudflare's older KV
// backend (a key is stored in, and compared through, a B-tree index).
const (
	MaxKeySize         = 2 << 10 // bytes in a KV key
	MaxValueSize       = 2 << 20 // bytes in a KV value
	MaxBatchKeys       = 128     // keys in one GetMany/PutMany/DeleteMany
	MaxSQLLength       = 100_000 // bytes in one SQL statement
	MaxColumns         = 100     // columns in a table
	MaxBoundParameters = 100     // parameters bound to one statement
)

// Errors returned by a Store. The root package re-exports them.
var (
	ErrKeyTooLarge   = errors.New("key larger than 2 KiB")
	ErrValueTooLarge = errors.New("value larger than 2 MiB")
	ErrTooManyKeys   = errors.New("more than 128 keys in one batch")
	ErrInvalidList   = errors.New("invalid list options")
	ErrNotAllowed    = errors.New("SQL not allowed")
	ErrNoRows        = errors.New("expected exactly one row, got none")
	ErrManyRows      = errors.New("expected exactly one row, got more")
	ErrCursorClosed  = errors.New("cursor closed")
	ErrOutsideEvent  = errors.New("storage used outside the event that owns it")
)
