package telemetry

import (
	"errors"
	"fmt"

	"github.com/mindrouter/mindrouter/controlplane/internal/refusal"
)

// The refusals of a telemetry stream. The server's error table maps each to its
// gRPC code; their messages are what the agent reads.
var (
	// ErrRefused is the one answer to every failed authentication, so that a
	// caller cannot tell an unknown node from a wrong secret or a node
	// without one (Unauthenticated).
	ErrRefused = errors.New("invalid node credentials")
	// ErrLookupUnavailable means the node could not be looked up; the agent
	// retries (Unavailable). The cause is logged, not sent.
	ErrLookupUnavailable = errors.New("node lookup unavailable; retry later")
	// ErrInvalidStream refuses a stream that breaks the protocol: no Hello
	// first, another node's name, a message other than a sample, too many
	// GPUs (InvalidArgument). The refusal's own message says which.
	ErrInvalidStream = errors.New("invalid telemetry stream")
	// ErrReplaced ends a stream when a newer one of the same node arrives
	// (Aborted).
	ErrReplaced = errors.New("replaced by a newer telemetry stream of the same node")
)

// invalidError is a protocol violation: it maps like ErrInvalidStream and
// reads as its own message.
func invalidError(msg string) error { return refusal.New(ErrInvalidStream, msg) }

func invalidf(format string, args ...any) error { return invalidError(fmt.Sprintf(format, args...)) }
