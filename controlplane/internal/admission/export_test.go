package admission

import (
	"testing"

	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

// StartForTest starts a Server behind real gRPC on loopback (this package's
// test harness) and returns it and a client of its SessionService, for the
// external tests that join it to other packages.
func StartForTest(t *testing.T) (*Server, controlplanev1.SessionServiceClient) {
	t.Helper()
	h := newHarness(t, Options{})
	return h.srv, h.session
}
