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
// (RequestID) and credential, and the Deferred of Track when the
// request has one. The caller adds the rest (the chat request, an operation).
func Call(r *http.Request, credential, endpoint string) relay.Call {
	return CallAs(r, credential, endpoint, audit.SurfaceOf(endpoint))
}

// CallAs is Call for a request whose audit record names surfaceName (the web
// chat's "web-chat") instead of the dialect its endpoint implies.
func CallAs(r *http.Request, credential, endpoint, surfaceName string) relay.Call {
	var d *relay.Deferred
	var e *audit.Entry
	if t, _ := r.Context().Value(trackedKey{}).(*tracked); t != nil {
		d, e = &t.deferred, t.audit
	}
	id := RequestID(r)
	e.Start(id, endpoint, surfaceName)
	return relay.Call{RequestID: id, Credential: credential, Endpoint: endpoint, Deferred: d, Audit: e}
}

// Refused records, on the request's audit entry, a request refused before it
// reached the relay (no key, a body that is not JSON, a request the decoder
// refuses): an inference request (a POST) is recorded whether or not it was
// admitted, with the status the client got and err as its error, but without
// a principal (no key was verified) or content (none was understood). A
// request that reached the relay is recorded there; Refused leaves it alone.
func Refused(r *http.Request, err error) {
	t, _ := r.Context().Value(trackedKey{}).(*tracked)
	if t == nil {
		return
	}
	e := t.audit
	if e == nil || r.Method != http.MethodPost || e.Started() {
		return
	}
	e.Start(RequestID(r), r.URL.Path, audit.SurfaceOf(r.URL.Path))
	e.Failed(err)
}

// tracked is what the middleware around the surfaces gives a request: one
// context value and one copy of the request for both.
type tracked struct {
	deferred relay.Deferred
	audit    *audit.Entry
}

type trackedKey struct{}

// Track returns r carrying a relay.Deferred that the calls built for it with
// Call hold their successful releases in (relay.Call.Deferred), and the audit
// entry e (nil: audit off), which those calls fill (relay.Call.Audit). The
// caller, the middleware around the surfaces, must call Send exactly once
// after the handler has returned, and finishes and ships e.
func Track(r *http.Request, e *audit.Entry) (*http.Request, *relay.Deferred) {
	t := &tracked{audit: e}
	return r.WithContext(context.WithValue(r.Context(), trackedKey{}, t)), &t.deferred
}

// DeferReleases is Track without an audit entry.
func DeferReleases(r *http.Request) (*http.Request, *relay.Deferred) { return Track(r, nil) }

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
