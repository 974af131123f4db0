package config_test

import (
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/config"
)

func TestImageFetchSettings(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load([]string{"-image-fetch-allow", "127.0.0.1/32, 10.1.2.3,::1, images.internal,.corp.example", "-keep-think-tags"},
		env(map[string]string{"MINDROUTER_CLUSTER_TOKEN": "t", "MINDROUTER_DP_IMAGE_FETCH_MAX_BYTES": "5MiB"}), io.Discard)
	require.NoError(t, err)
	prefixes, hosts, err := cfg.ImageFetchAllowList()
	require.NoError(t, err)
	require.Equal(t, []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("10.1.2.3/32"),
		netip.MustParsePrefix("::1/128")}, prefixes)
	require.Equal(t, []string{"images.internal", ".corp.example"}, hosts)
	require.Equal(t, int64(5<<20), cfg.ImageFetchMaxBytes)
	require.Equal(t, 10*time.Second, cfg.ImageFetchTimeout)
	require.True(t, cfg.KeepThinkTags)

	def, err := config.Load(nil, env(map[string]string{"MINDROUTER_CLUSTER_TOKEN": "t"}), io.Discard)
	require.NoError(t, err)
	require.Empty(t, def.ImageFetchAllow, "nothing private is reachable by default")
	require.Equal(t, int64(20<<20), def.ImageFetchMaxBytes)
	require.False(t, def.KeepThinkTags)

	_, err = config.Load([]string{"-image-fetch-allow", "10.0.0.0/33,bad host!", "-image-fetch-timeout", "0s"},
		env(map[string]string{"MINDROUTER_CLUSTER_TOKEN": "t"}), io.Discard)
	require.ErrorContains(t, err, "--image-fetch-allow")
	require.ErrorContains(t, err, "--image-fetch-timeout must be positive")
}
