package collab

import "errors"

// Errors of the collaborative-documents pattern.
var (
	// ErrConflict: the edit's base_version is not the document's version.
	ErrConflict = errors.New("document changed since base_version")
	// ErrTooLarge: the content is over MaxContent bytes.
	ErrTooLarge = errors.New("content too large")
)
