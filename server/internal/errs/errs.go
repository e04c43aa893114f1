// Package errs holds the kinds of failure paycenter's domains report. Domain code returns
// these; the server turns them into RPC codes in one place.
package errs

import (
	"errors"
	"fmt"
)

// Sentinel kinds; match them with errors.Is.
var (
	// ErrInvalid: the request is malformed. Returned as *FieldError naming the field.
	ErrInvalid = errors.New("invalid argument")
	// ErrNotFound: no such object for this caller (other tenants' objects included).
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: an object with this key exists with other content.
	ErrAlreadyExists = errors.New("already exists")
	// ErrFailedPrecondition: the object is in a state that forbids the request.
	ErrFailedPrecondition = errors.New("failed precondition")
	// ErrPermissionDenied: the caller is known but may not do this.
	ErrPermissionDenied = errors.New("permission denied")
	// ErrUnauthenticated: no valid credentials.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrUnavailable: a dependency (a channel, a phone) cannot be reached now; retry later.
	ErrUnavailable = errors.New("unavailable")
)

// FieldError is an invalid field of a request.
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// Is makes errors.Is(err, ErrInvalid) true.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

// Invalid reports an invalid field, e.g. Invalid("name", "must be 1 to 128 characters").
func Invalid(field, format string, args ...any) error {
	return &FieldError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// Error is a failure of a kind with a message safe to show the caller.
type Error struct {
	Kind    error
	Message string
}

func (e *Error) Error() string { return e.Message }

// Unwrap returns the kind.
func (e *Error) Unwrap() error { return e.Kind }

// NotFound reports a missing object, e.g. NotFound("merchant %s", id).
func NotFound(format string, args ...any) error {
	return &Error{Kind: ErrNotFound, Message: fmt.Sprintf(format, args...) + " not found"}
}

// AlreadyExists reports a key clash.
func AlreadyExists(format string, args ...any) error {
	return &Error{Kind: ErrAlreadyExists, Message: fmt.Sprintf(format, args...)}
}

// FailedPrecondition reports a state that forbids the request.
func FailedPrecondition(format string, args ...any) error {
	return &Error{Kind: ErrFailedPrecondition, Message: fmt.Sprintf(format, args...)}
}

// PermissionDenied reports a caller that may not do this.
func PermissionDenied(format string, args ...any) error {
	return &Error{Kind: ErrPermissionDenied, Message: fmt.Sprintf(format, args...)}
}

// Unavailable reports a dependency that cannot be reached now.
func Unavailable(format string, args ...any) error {
	return &Error{Kind: ErrUnavailable, Message: fmt.Sprintf(format, args...)}
}
