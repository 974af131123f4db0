package scheduler

import (
	"errors"
	"fmt"
	"time"
)

var (
	// ErrQueueFull refuses a ticket because its model's queue holds MaxQueuePerModel
	// tickets already.
	ErrQueueFull = errors.New("queue full")
	// ErrQueueTimeout ends a ticket that waited QueueTimeout without a slot.
	ErrQueueTimeout = errors.New("queue timeout")
)

// QueueError is a refusal from the queue. errors.Is matches it against ErrQueueFull
// or ErrQueueTimeout, and it tells the client when to try again.
type QueueError struct {
	// Kind is ErrQueueFull or ErrQueueTimeout.
	Kind error
	// Model is the queue the ticket was refused from.
	Model string
	// Waiting is the number of tickets queued for the model (queue full).
	Waiting int
	// Waited is how long the ticket waited (queue timeout).
	Waited time.Duration
	// After is the suggested delay before a retry.
	After time.Duration
	// Cause is the policy's own reason for a refusal, when it has one (e.g. the
	// user's queue limit).
	Cause error
}

// Error describes the refusal without internals.
func (e *QueueError) Error() string {
	if errors.Is(e.Kind, ErrQueueFull) {
		if e.Cause != nil {
			return fmt.Sprintf("model %q: %v", e.Model, e.Cause)
		}
		return fmt.Sprintf("model %q: queue full (%d requests waiting)", e.Model, e.Waiting)
	}
	return fmt.Sprintf("model %q: no backend capacity available (waited %s)", e.Model, e.Waited.Round(time.Millisecond))
}

// Unwrap returns Kind and, when there is one, Cause, so that errors.Is matches
// both.
func (e *QueueError) Unwrap() []error {
	if e.Cause != nil {
		return []error{e.Kind, e.Cause}
	}
	return []error{e.Kind}
}

// RetryAfter is the suggested delay before a retry.
func (e *QueueError) RetryAfter() time.Duration { return e.After }
