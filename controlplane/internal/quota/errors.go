package quota

import (
	"errors"
	"time"
)

var (
	// ErrQuotaExhausted refuses a request whose reservation does not fit what is
	// left of the user's token budget this period.
	ErrQuotaExhausted = errors.New("token quota exceeded")
	// ErrRateLimited refuses a request over the user's (or key's) requests per
	// minute.
	ErrRateLimited = errors.New("rate limit exceeded")
	// ErrConcurrencyLimited refuses a request while the user already has the
	// maximum number of requests admitted or queued.
	ErrConcurrencyLimited = errors.New("too many concurrent requests")
)

// LimitError is a refusal: it wraps one of the sentinel errors, says why in
// words a client can act on, and carries when to retry.
type LimitError struct {
	err   error
	msg   string
	after time.Duration
}

// Error is the message for the client.
func (e *LimitError) Error() string { return e.msg }

// Unwrap returns the sentinel error.
func (e *LimitError) Unwrap() error { return e.err }

// RetryAfter is how long the client should wait before trying again; always at
// least a second.
func (e *LimitError) RetryAfter() time.Duration { return e.after }
