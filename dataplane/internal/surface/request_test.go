package surface_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/audit"
	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/relay"
	"github.com/mindrouter/mindrouter/dataplane/internal/surface"
)

func TestBearer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		header, want string
		ok           bool
	}{
		{"Bearer mr2_abc", "mr2_abc", true},
		{"bearer  mr2_abc ", "mr2_abc", true},
		{"Bearer ", "", true},
		{"Basic dXNlcjpwdw==", "", false},
		{"", "", false},
	} {
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		if tc.header != "" {
			r.Header.Set("Authorization", tc.header)
		}
		got, ok := surface.Bearer(r)
		require.Equal(t, tc.want, got, tc.header)
		require.Equal(t, tc.ok, ok, tc.header)
	}
}

func TestRead(t *testing.T) {
	t.Parallel()
	missing := errors.New("no key")
	key := func(r *http.Request) string { return r.Header.Get("X-Key") }

	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{"a":1}`))
	_, _, err := surface.Read(r, key, missing)
	require.ErrorIs(t, err, missing)

	r.Header.Set("X-Key", "k")
	c, body, err := surface.Read(r, key, missing)
	require.NoError(t, err)
	require.Equal(t, "k", c)
	require.JSONEq(t, `{"a":1}`, string(body))

	w := httptest.NewRecorder()
	r = httptest.NewRequest(http.MethodPost, "/", strings.NewReader(strings.Repeat("x", 100)))
	r.Header.Set("X-Key", "k")
	r.Body = http.MaxBytesReader(w, r.Body, 10)
	_, _, err = surface.Read(r, key, missing)
	ce := canonical.AsError(err)
	require.Equal(t, canonical.KindTooLarge, ce.Kind)
	require.Equal(t, "request body is larger than 10 bytes", ce.Message)
}

func TestAdmissionHeaders(t *testing.T) {
	t.Parallel()
	h := http.Header{}
	surface.AdmissionHeaders(h, relay.Admission{})
	require.Empty(t, h)
	surface.AdmissionHeaders(h, relay.Admission{QueuePosition: 3, Simulated: true})
	require.Equal(t, "3", h.Get(surface.QueuePositionHeader))
	require.Equal(t, "true", h.Get(surface.SimulatedHeader))
}

// TestCallCarriesDeferred: a call built for a request that DeferReleases
// prepared holds its releases in that request's Deferred; one built for
// any other request sends them at once.
func TestCallCarriesDeferred(t *testing.T) {
	t.Parallel()
	plain := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", nil)
	c := surface.Call(plain, "key", "/v1/chat/completions")
	require.Nil(t, c.Deferred)
	require.Equal(t, "key", c.Credential)
	require.Equal(t, "/v1/chat/completions", c.Endpoint)
	require.NotEmpty(t, c.RequestID)

	r, d := surface.DeferReleases(plain)
	require.NotNil(t, d)
	require.Same(t, d, surface.Call(r, "key", "/api/chat").Deferred)
	require.Nil(t, surface.Call(plain, "key", "/api/chat").Deferred, "the original request is left as it was")
}

// TestTrackCarriesAuditAndDeferred: Track gives a request both its Deferred
// and its audit entry, which the calls built for it carry and start, and
// which a refusal before the relay records; the request it copied has neither.
func TestTrackCarriesAuditAndDeferred(t *testing.T) {
	t.Parallel()
	plain := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", nil)
	e := audit.NewEntry(time.Now(), "127.0.0.1", "test", nil)
	r, d := surface.Track(plain, e)
	c := surface.Call(r, "key", "/v1/chat/completions")
	require.Same(t, d, c.Deferred)
	require.Same(t, e, c.Audit)
	require.True(t, e.Started(), "the call starts the entry")
	require.Nil(t, surface.Call(plain, "key", "/v1/chat/completions").Audit)

	refused := audit.NewEntry(time.Now(), "127.0.0.1", "test", nil)
	r, _ = surface.Track(plain, refused)
	surface.Refused(r, errors.New("no key"))
	require.True(t, refused.Started(), "a refusal is recorded on the tracked entry")
}
