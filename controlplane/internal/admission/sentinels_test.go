package admission

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/controlplane/internal/identity"
	"github.com/mindrouter/mindrouter/controlplane/internal/registry"
)

// TestSentinelsMapLikeTheirOrigins keeps admission's refusals on the server's
// existing error table.
func TestSentinelsMapLikeTheirOrigins(t *testing.T) {
	t.Parallel()
	require.ErrorIs(t, ErrPermissionDenied, identity.ErrPermissionDenied)
	h := newHarness(t, Options{}, backendCand(1, 1))
	req := h.admitReq("r")
	req.ExcludedBackendIds = []int64{1}
	_, err := h.srv.Admit(t.Context(), req)
	require.ErrorIs(t, err, ErrAllExcluded)
	require.ErrorIs(t, err, registry.ErrNoHealthyBackend)
	var ra interface{ RetryAfter() time.Duration }
	require.ErrorAs(t, err, &ra)
	require.Positive(t, ra.RetryAfter())
}
