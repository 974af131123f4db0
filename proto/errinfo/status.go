package errinfo

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// KnownStatus is the status err already has: its own when it is a gRPC status
// error, Canceled or DeadlineExceeded for a context's errors; false for
// anything else, which the caller maps (the server by its error table).
func KnownStatus(err error) (*status.Status, bool) {
	if st, ok := status.FromError(err); ok {
		return st, true
	}
	switch {
	case errors.Is(err, context.Canceled):
		return status.New(codes.Canceled, "request cancelled"), true
	case errors.Is(err, context.DeadlineExceeded):
		return status.New(codes.DeadlineExceeded, "deadline exceeded"), true
	}
	return nil, false
}
