package requestid_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/requestid"
)

func TestRequestID(t *testing.T) {
	t.Parallel()
	a, b := requestid.New(), requestid.New()
	require.NotEqual(t, a, b)
	require.True(t, requestid.Valid(a))
	for _, bad := range []string{"", "has space", "tab\t", strings.Repeat("x", 129), "é"} {
		require.False(t, requestid.Valid(bad), "%q", bad)
	}
	ctx := requestid.NewContext(context.Background(), "client-id", "minted")
	require.Equal(t, "client-id", requestid.FromContext(ctx))
	require.Equal(t, "minted", requestid.Unique(ctx))
	require.Empty(t, requestid.FromContext(context.Background()))
	require.Empty(t, requestid.Unique(context.Background()))
}
