package app

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestServePprof(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	stop := servePprof(ln, slog.New(slog.DiscardHandler))
	url := "http://" + ln.Addr().String()

	resp, err := http.Get(url + "/debug/pprof/goroutine?debug=1")
	require.NoError(t, err)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, string(b), "goroutine profile:")

	resp, err = http.Get(url + "/metrics")
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode, "only profiles are served there")

	stop()
	_, err = http.Get(url + "/debug/pprof/")
	require.Error(t, err, "stopped")
}
