package canonical

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"
)

// ErrorKind classifies a failure the way a client needs to see it; each surface
// maps a kind to its dialect's status code and envelope.
type ErrorKind int

// The error kinds. The zero value is KindInternal, so an unclassified error is
// never shown as the client's fault.
const (
	// KindInternal is a bug or an unexpected failure (500); its detail is never shown.
	KindInternal ErrorKind = iota
	// KindInvalidRequest is malformed or unacceptable input (400).
	KindInvalidRequest
	// KindAuthentication is a missing, unknown, revoked or expired credential (401).
	KindAuthentication
	// KindPermission is a valid credential that may not do this (403).
	KindPermission
	// KindNotFound is an unknown model or resource (404).
	KindNotFound
	// KindTooLarge is a request body over the limit (413).
	KindTooLarge
	// KindUnprocessable is well-formed input that cannot be served as asked (422).
	KindUnprocessable
	// KindRateLimited is too many requests per minute (429, Retry-After).
	KindRateLimited
	// KindQuotaExhausted is a spent token budget (429, Retry-After).
	KindQuotaExhausted
	// KindUnavailable is a temporary lack of capacity or of the control plane (503, Retry-After).
	KindUnavailable
	// KindBackend is a failure of the inference backends (502).
	KindBackend
	// KindCancelled is a client that went away; nothing is written to it.
	KindCancelled
)

var kindNames = [...]string{
	KindInternal:       "internal",
	KindInvalidRequest: "invalid_request",
	KindAuthentication: "authentication",
	KindPermission:     "permission",
	KindNotFound:       "not_found",
	KindTooLarge:       "too_large",
	KindUnprocessable:  "unprocessable",
	KindRateLimited:    "rate_limited",
	KindQuotaExhausted: "quota_exhausted",
	KindUnavailable:    "unavailable",
	KindBackend:        "backend",
	KindCancelled:      "cancelled",
}

// String returns a short snake_case name, for metrics and logs.
func (k ErrorKind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// Error is a failure classified for clients. Message is safe to show; the cause
// in Err is not.
type Error struct {
	Kind ErrorKind
	// Message is the client-facing description.
	Message string
	// Param names the offending request field, if any.
	Param string
	// Code is a dialect-neutral machine code, e.g. "model_not_found",
	// "context_length_exceeded", "queue_full"; empty when none fits.
	Code string
	// Status, when non-zero, is the HTTP status to answer with instead of the
	// kind's own (a backend's 4xx passed through).
	Status int
	// Wait is how long the client should wait before retrying; 0 when unknown.
	Wait time.Duration
	// Err is the underlying cause, for logs.
	Err error
}

// Error returns the message and, when present, the cause.
func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// RetryAfter returns how long the client should wait before retrying.
func (e *Error) RetryAfter() time.Duration { return e.Wait }

// Invalid returns a KindInvalidRequest error about param. The message is cut
// with Echo: validation messages quote the client's input.
func Invalid(param, message string) *Error {
	return &Error{Kind: KindInvalidRequest, Param: param, Message: Echo(message)}
}

// Canonicaler is implemented by errors of other packages that know how they
// look to a client (control-plane refusals, engine failures).
type Canonicaler interface {
	Canonical() *Error
}

// AsError classifies any error for a client: a *Error as is, an error in the
// chain that implements Canonicaler by its own mapping, context cancellation as
// KindCancelled, a deadline as KindUnavailable, and anything else as
// KindInternal with a generic message.
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	var ce *Error
	if errors.As(err, &ce) {
		return ce
	}
	var cc Canonicaler
	if errors.As(err, &cc) {
		if c := cc.Canonical(); c != nil {
			return c
		}
	}
	switch {
	case errors.Is(err, context.Canceled):
		return &Error{Kind: KindCancelled, Message: "request cancelled", Err: err}
	case errors.Is(err, context.DeadlineExceeded):
		return &Error{Kind: KindUnavailable, Message: "request timed out", Code: "timeout", Err: err}
	}
	return &Error{Kind: KindInternal, Message: "Internal server error", Err: err}
}

// BodyError classifies a failure to read a request body: a body over the size
// limit is KindTooLarge (413), an error already classified (a body that
// arrived too slowly) passes as it is, and anything else is KindInvalidRequest.
func BodyError(err error) *Error {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return &Error{Kind: KindTooLarge,
			Message: "request body is larger than " + strconv.FormatInt(tooLarge.Limit, 10) + " bytes", Err: err}
	}
	var ce *Error
	if errors.As(err, &ce) {
		return ce
	}
	return &Error{Kind: KindInvalidRequest, Message: "could not read the request body", Err: err}
}

// MaxEcho is the most bytes of client input (or of a message quoting it) that
// an error repeats.
const MaxEcho = 512

// Echo returns client input, or a message quoting it, fit to send back in an
// error: at most MaxEcho bytes, cut at a rune boundary and marked as cut, so
// that a megabyte model name is not sent back whole. It is the one place that
// caps echoed input: canonical.Invalid, the control plane's messages (cpclient)
// and the dialects' model-not-found messages go through it.
func Echo(s string) string {
	if len(s) <= MaxEcho {
		return s
	}
	cut := MaxEcho
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…(" + strconv.Itoa(len(s)) + " bytes)"
}
