package anthropic

import (
	"log/slog"
	"math"
	"net/http"
	"strconv"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/requestid"
	"github.com/mindrouter/mindrouter/dataplane/internal/surface"
	"github.com/mindrouter/mindrouter/dataplane/internal/translate/anthropic"
)

// errMissingKey is answered without asking the control plane, in Anthropic's words.
var errMissingKey = &canonical.Error{
	Kind: canonical.KindAuthentication, Code: "missing_api_key",
	Message: "x-api-key header is required (or send the key as \"Authorization: Bearer <key>\")",
}

// WriteError writes err as an Anthropic error response: the one place where
// relay, control-plane, engine and decoding errors become Anthropic statuses
// and envelopes (through canonical.AsError and anthropic.EncodeError). Nothing
// is written for a client that went away; an internal error's cause is
// logged, never sent.
func (s *Surface) WriteError(w http.ResponseWriter, r *http.Request, err error) {
	ce := canonical.AsError(err)
	if ce.Kind == canonical.KindCancelled {
		return
	}
	s.logError(r, ce)
	surface.Refused(r, ce)
	er := anthropic.EncodeError(ce, requestid.FromContext(r.Context()))
	h := w.Header()
	h.Set("Content-Type", "application/json")
	setRequestID(h, r)
	if er.RetryAfter > 0 {
		h.Set("Retry-After", retryAfterSeconds(er.RetryAfter.Seconds()))
	}
	w.WriteHeader(er.Status)
	_, _ = w.Write(er.Body)
}

// streamError returns the event that ends a stream that already started, or
// nil when the client went away.
func (s *Surface) streamError(r *http.Request, err error) []byte {
	ce := canonical.AsError(err)
	if ce.Kind == canonical.KindCancelled || r.Context().Err() != nil {
		return nil
	}
	s.logError(r, ce)
	return anthropic.AppendStreamError(nil, ce, requestid.FromContext(r.Context()))
}

func (s *Surface) logError(r *http.Request, ce *canonical.Error) {
	level := slog.LevelDebug
	if ce.Kind == canonical.KindInternal {
		level = slog.LevelError
	}
	s.log.Log(r.Context(), level, "request failed", slog.String("request_id", requestid.FromContext(r.Context())),
		slog.String("unique_id", requestid.Unique(r.Context())), slog.String("kind", ce.Kind.String()), slog.Any("error", ce))
}

// retryAfterSeconds rounds up to whole seconds, at least 1.
func retryAfterSeconds(s float64) string {
	return strconv.Itoa(max(1, int(math.Ceil(s))))
}
