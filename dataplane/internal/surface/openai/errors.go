package openai

import (
	"log/slog"
	"math"
	"net/http"
	"strconv"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/requestid"
	"github.com/mindrouter/mindrouter/dataplane/internal/stream"
	"github.com/mindrouter/mindrouter/dataplane/internal/surface"
	"github.com/mindrouter/mindrouter/dataplane/internal/translate/openai"
)

// errMissingKey is answered without asking the control plane.
var errMissingKey = &canonical.Error{
	Kind: canonical.KindAuthentication, Code: "missing_api_key",
	Message: "You didn't provide an API key. Send it as \"Authorization: Bearer <key>\" or in the X-API-Key header.",
}

// WriteError writes err as an OpenAI error response: the one place where relay,
// control-plane, engine and decoding errors become OpenAI statuses and
// envelopes (through canonical.AsError and openai.EncodeError). Nothing is
// written for a client that went away; an internal error's cause is logged,
// never sent.
func (s *Surface) WriteError(w http.ResponseWriter, r *http.Request, err error) {
	ce := canonical.AsError(err)
	if ce.Kind == canonical.KindCancelled {
		return
	}
	s.logError(r, ce)
	surface.Refused(r, ce)
	er := openai.EncodeError(ce)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if er.RetryAfter > 0 {
		h.Set("Retry-After", retryAfterSeconds(er.RetryAfter.Seconds()))
	}
	w.WriteHeader(er.Status)
	_, _ = w.Write(er.Body)
}

// writeStreamError ends a stream that already started with an error event.
func (s *Surface) writeStreamError(r *http.Request, sw *stream.SSEWriter, err error) {
	ce := canonical.AsError(err)
	if ce.Kind == canonical.KindCancelled || r.Context().Err() != nil {
		return
	}
	s.logError(r, ce)
	_ = sw.Raw(openai.AppendStreamError(nil, ce))
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
