package fairshare

import "errors"

var (
	// ErrUserQueueFull refuses a request because its user already has
	// Params.MaxQueuePerUser requests queued in the pool.
	ErrUserQueueFull = errors.New("user queue full")
	// ErrModelQueueFull refuses a request because the pool already holds
	// Params.MaxQueuePerModel queued requests.
	ErrModelQueueFull = errors.New("model queue full")
	// ErrDuplicateID refuses a request whose ID is already queued.
	ErrDuplicateID = errors.New("request already queued")
	// ErrInvalidRequest refuses a request without an ID.
	ErrInvalidRequest = errors.New("invalid request")
	// ErrInvalidParams is wrapped by NewPool when a parameter is out of range.
	ErrInvalidParams = errors.New("invalid fair-share parameters")
)
