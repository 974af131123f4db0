package ollama

import (
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/requestid"
	"github.com/mindrouter/mindrouter/dataplane/internal/surface"
	"github.com/mindrouter/mindrouter/dataplane/internal/translate/ollama"
)

// errMissingKey is answered without asking the control plane. Ollama itself
// has no keys; its clients send one as a bearer token.
var errMissingKey = &canonical.Error{
	Kind: canonical.KindAuthentication, Code: "missing_api_key",
	Message: "You didn't provide an API key. Send it as \"Authorization: Bearer <key>\" or in the X-API-Key header.",
}

// defaultRetryAfter is what 429 and 503 answers advertise when the control
// plane gave no delay: clients must always be told when to come back.
const defaultRetryAfter = time.Second

// WriteError writes err as an Ollama error response, {"error": "…"}: the one
// place where relay, control-plane, engine and decoding errors become
// Ollama statuses (through canonical.AsError and ollama.EncodeError). 429
// and 503 carry Retry-After. Nothing is written for a client that went away;
// an internal error's cause is logged, never sent.
func (s *Surface) WriteError(w http.ResponseWriter, r *http.Request, err error) {
	s.writeError(w, r, err, "")
}

// writeError is WriteError for a request about model: an unknown model is
// reported in Ollama's words, which its clients match ("model 'x' not
// found").
func (s *Surface) writeError(w http.ResponseWriter, r *http.Request, err error, model string) {
	ce := clientError(err, model)
	if ce.Kind == canonical.KindCancelled {
		return
	}
	s.logError(r, ce)
	surface.Refused(r, ce)
	status, body := ollama.EncodeError(ce)
	h := w.Header()
	h.Set("Content-Type", jsonContentType)
	wait := ce.Wait
	if wait <= 0 && (status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable) {
		wait = defaultRetryAfter
	}
	if wait > 0 {
		h.Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(wait.Seconds())))))
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// writeStreamError ends a stream that already started with an {"error": …}
// line, which Ollama clients report as the request's error.
func (s *Surface) writeStreamError(r *http.Request, sink *ndjsonSink, err error) {
	ce := clientError(err, "")
	if ce.Kind == canonical.KindCancelled || r.Context().Err() != nil {
		return
	}
	s.logError(r, ce)
	sink.buf = ollama.AppendStreamError(sink.buf[:0], ce)
	_ = sink.flush()
}

func clientError(err error, model string) *canonical.Error {
	ce := canonical.AsError(err)
	if model != "" && ce.Kind == canonical.KindNotFound && ce.Code == "model_not_found" {
		c := *ce
		c.Message = ollama.ModelNotFound(model)
		ce = &c
	}
	if ce.Message == "" {
		c := *ce
		status, _ := ollama.EncodeError(ce)
		c.Message = http.StatusText(status)
		ce = &c
	}
	return ce
}

func (s *Surface) logError(r *http.Request, ce *canonical.Error) {
	level := slog.LevelDebug
	if ce.Kind == canonical.KindInternal {
		level = slog.LevelError
	}
	s.log.Log(r.Context(), level, "request failed", slog.String("request_id", requestid.FromContext(r.Context())),
		slog.String("unique_id", requestid.Unique(r.Context())), slog.String("kind", ce.Kind.String()), slog.Any("error", ce))
}
