package daemon

import "fmt"

// classedError carries Docker's exact message text while still matching one
// of the status classes with errors.Is.
type classedError struct {
	msg   string
	class error
	cause error
}

func (e *classedError) Error() string { return e.msg }
func (e *classedError) Unwrap() []error {
	if e.cause != nil {
		return []error{e.class, e.cause}
	}
	return []error{e.class}
}

func classed(class error, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	var cause error
	if u, ok := err.(interface{ Unwrap() error }); ok {
		cause = u.Unwrap()
	}
	return &classedError{msg: err.Error(), class: class, cause: cause}
}

// NotFoundf is a 404 error whose message is exactly the formatted text
// ("No such image: busybox"); %w in format keeps the cause reachable.
func NotFoundf(format string, args ...any) error { return classed(ErrNotFound, format, args...) }

// Conflictf is a 409 error with exactly the formatted text.
func Conflictf(format string, args ...any) error { return classed(ErrConflict, format, args...) }

// BadParameterf is a 400 error with exactly the formatted text.
func BadParameterf(format string, args ...any) error {
	return classed(ErrBadParameter, format, args...)
}
