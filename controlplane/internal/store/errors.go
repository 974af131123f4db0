package store

import (
	"errors"
	"fmt"

	"github.com/mindrouter/mindrouter/ent"
)

var (
	// ErrNotFound means the row asked for does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict means the write clashes with an existing row (a unique name, URL,
	// username, email or digest), or a registration differs from the stored one.
	ErrConflict = errors.New("conflict")
	// ErrInUse means the row cannot be deleted because others still reference it.
	ErrInUse = errors.New("in use")
	// ErrInvalid means a value is out of range for its column (too long, an unknown
	// status or engine, a negative count).
	ErrInvalid = errors.New("invalid value")
	// ErrUnavailable means the database could not be reached, or did not answer
	// within the store's deadline (Config.Timeout). Errors that match it carry a
	// RetryAfter method.
	ErrUnavailable = errors.New("database unavailable")
)

// dbErr maps ent's errors onto the store's sentinels. The detail of constraint
// errors is dropped: it names tables and, for digests, could echo secret material.
func dbErr(op string, err error) error {
	var verr *ent.ValidationError
	switch {
	case err == nil:
		return nil
	case ent.IsNotFound(err):
		return fmt.Errorf("%s: %w", op, ErrNotFound)
	case ent.IsConstraintError(err):
		return fmt.Errorf("%s: %w", op, ErrConflict)
	case errors.As(err, &verr):
		return fmt.Errorf("%s: %w: field %s", op, ErrInvalid, verr.Name)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// invalid reports a value the store refuses before it reaches the database.
func invalid(op, format string, args ...any) error {
	return fmt.Errorf("%s: %w: %s", op, ErrInvalid, fmt.Sprintf(format, args...))
}
