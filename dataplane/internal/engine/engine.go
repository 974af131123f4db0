package engine

import (
	"context"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
)

// Target is the backend and model a lease granted.
type Target struct {
	// URL is the backend's base URL, e.g. http://gpu1:11434.
	URL string
	// Model is the model name the backend knows.
	Model string
	// ContextLength is the context window the control plane allows; 0 when unknown.
	ContextLength int64
	// MaxOutputTokens is the control plane's output cap; 0 when none is needed.
	MaxOutputTokens int64
}

// MaxTokens returns the output limit to send for a client that asked for
// requested tokens (0 = no limit): the smaller of the two limits that are set.
func (t Target) MaxTokens(requested int64) int64 {
	if t.MaxOutputTokens > 0 && (requested == 0 || requested > t.MaxOutputTokens) {
		return t.MaxOutputTokens
	}
	return requested
}

// Engine runs chat requests against one kind of backend.
//
// Errors: a failure of the backend (no connection, timeout, 5xx, broken or
// malformed stream) is an *Error with Retryable set; a backend's refusal (4xx)
// is an *Error with Retryable unset and the backend's status and message; a
// request the engine cannot express is a *canonical.Error; a cancelled ctx
// returns the context's error; and an error returned by emit is returned
// wrapped, unchanged, so that the caller recognises its own error.
type Engine interface {
	// Chat runs a non-streamed request.
	Chat(ctx context.Context, t Target, req *canonical.Request) (*canonical.Response, error)
	// ChatStream runs a streamed request and calls emit for every chunk that
	// carries something (in order, from the calling goroutine). The last chunk
	// carries the usage when the backend reported it.
	ChatStream(ctx context.Context, t Target, req *canonical.Request, emit func(canonical.Chunk) error) error
}
