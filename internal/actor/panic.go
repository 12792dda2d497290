package actor

import (
	"fmt"
	"runtime/debug"
)

// PanicError is a panic recovered from a handler. The stack is for logs,
// never for responses.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("handler panicked: %v", e.Value) }

// Is makes a PanicError an ErrReset: the object was reset by the panic.
func (e *PanicError) Is(target error) bool { return target == ErrReset }

func stack() []byte { return debug.Stack() }
