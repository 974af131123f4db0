package surface

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/mindrouter/mindrouter/dataplane/internal/audit"
	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/relay"
	"github.com/mindrouter/mindrouter/dataplane/internal/requestid"
)

// Header names every surface writes.
const (
	// QueuePositionHeader is set when the request waited in the model's queue.
	QueuePositionHeader = "X-Mindrouter-Queue-Position"
	// SimulatedHeader is "true" when the answer came from the engine simulator.
	SimulatedHeader = "X-Mindrouter-Simulated"
)

// Bearer returns the token of an "Authorization: Bearer …" header; ok is
// false when the request has no such header.
func Bearer(r *http.Request) (token string, ok bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if ok && strings.EqualFold(scheme, "Bearer") {
		return strings.TrimSpace(token), true
	}
	return "", false
}

// Read returns the request's credential, as credential finds it, and its
// body. With no credential it returns missing; a body that cannot be read
// returns canonical.BodyError's refusal. The caller writes the error in its
// dialect.
func Read(r *http.Request, credential func(*http.Request) string, missing error) (string, []byte, error) {
	c := credential(r)
	if c == "" {
		return "", nil, missing
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return "", nil, canonical.BodyError(err)
	}
	return c, body, nil
}

// Call returns the relay call of a request to endpoint: its request id
// (RequestID) and credential, and the Deferred of DeferReleases when the
// request has one. The caller adds the rest (the chat request, an operation).
func Call(r *http.Request, credential, endpoint string) relay.Call {
	d, _ := r.Context().Value(deferredKey{}).(*relay.Deferred)
	id := RequestID(r)
	e, _ := r.Context().Value(auditKey{}).(*audit.Entry)
	e.Start(id, endpoint, audit.SurfaceOf(endpoint))
	return relay.Call{RequestID: id, Credential: credential, Endpoint: endpoint, Deferred: d, Audit: e}
}

type auditKey struct{}

// WithAudit returns r carrying e, which the calls built for it with Call fill
// (relay.Call.Audit). The caller, the middleware around the surfaces, finishes
// and ships it after the handler has returned.
func WithAudit(r *http.Request, e *audit.Entry) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), auditKey{}, e))
}

type deferredKey struct{}

// DeferReleases returns r carrying a relay.Deferred that the calls built for
// it with Call hold their successful releases in (relay.Call.Deferred). The
// caller, the middleware around the surfaces, must call Send exactly once
// after the handler has returned.
func DeferReleases(r *http.Request) (*http.Request, *relay.Deferred) {
	d := &relay.Deferred{}
	return r.WithContext(context.WithValue(r.Context(), deferredKey{}, d)), d
}

// RequestID is the id usage is keyed by: the server's unique id, never the
// client's X-Request-ID.
func RequestID(r *http.Request) string {
	if id := requestid.Unique(r.Context()); id != "" {
		return id
	}
	return requestid.New()
}

// AdmissionHeaders sets the MindRouter headers of an admitted request.
func AdmissionHeaders(h http.Header, a relay.Admission) {
	if a.QueuePosition > 0 {
		h.Set(QueuePositionHeader, strconv.Itoa(int(a.QueuePosition)))
	}
	if a.Simulated {
		h.Set(SimulatedHeader, "true")
	}
}
