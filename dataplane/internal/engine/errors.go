package engine

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
)

// Error is a failed backend call.
type Error struct {
	// Retryable is set when the backend failed (connection, timeout, 5xx, broken
	// stream) and another backend may succeed; unset when the backend refused
	// the request (4xx), which is the client's to see.
	Retryable bool
	// Status is the backend's HTTP status; 0 when it never answered.
	Status int
	// Message is the backend's own error message or a short description; it
	// contains no URL or address.
	Message string
	// Err is the cause, for logs.
	Err error
}

// Error describes the failure.
func (e *Error) Error() string {
	s := "backend"
	if e.Status != 0 {
		s = fmt.Sprintf("backend HTTP %d", e.Status)
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Canonical shows a refusal with the backend's status and message, and a
// failure as a 502 that names only the status.
func (e *Error) Canonical() *canonical.Error {
	if !e.Retryable && e.Status >= 400 && e.Status < 500 {
		kind := canonical.KindInvalidRequest
		switch e.Status {
		case http.StatusNotFound:
			kind = canonical.KindNotFound
		case http.StatusRequestEntityTooLarge:
			kind = canonical.KindTooLarge
		case http.StatusTooManyRequests:
			kind = canonical.KindRateLimited
		}
		msg := e.Message
		if msg == "" {
			msg = http.StatusText(e.Status)
		}
		return &canonical.Error{Kind: kind, Status: e.Status, Message: msg, Err: e}
	}
	msg := "the backend failed"
	if e.Status != 0 {
		msg = fmt.Sprintf("the backend answered HTTP %d", e.Status)
	}
	return &canonical.Error{Kind: canonical.KindBackend, Message: msg, Err: e}
}

// IsRetryable reports whether err is a backend failure another backend may not have.
func IsRetryable(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Retryable
}

// ErrIdle is the cause of a call cancelled because the backend sent nothing for
// longer than the idle timeout.
var ErrIdle = errors.New("backend sent nothing within the idle timeout")
