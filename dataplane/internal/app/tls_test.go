package app

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/config"
	"github.com/mindrouter/mindrouter/tlsfiles/tlstest"
)

// TestPublicPortTLS: with -tls-cert-file/-tls-key-file the public listener
// speaks HTTPS (HTTP/2 and HTTP/1.1), refuses plain HTTP, and serves a
// rotated certificate from the next handshake on.
func TestPublicPortTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "public")
	first := ca.Server(t, dir, "dataplane")
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ln, err := publicTLS(config.Config{TLSCertFile: first.CertFile, TLSKeyFile: first.Key}, raw)
	require.NoError(t, err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Proto)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	pem, err := os.ReadFile(ca.File)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(pem))
	get := func(h2 bool) (string, string) {
		t.Helper()
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: h2, DisableKeepAlives: true}
		if !h2 {
			tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		}
		resp, err := (&http.Client{Transport: tr}).Get("https://" + raw.Addr().String() + "/")
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return string(b), resp.TLS.PeerCertificates[0].SerialNumber.String()
	}
	proto, serial := get(true)
	assert.Equal(t, "HTTP/2.0", proto)
	assert.Equal(t, first.Cert.SerialNumber.String(), serial)
	proto, _ = get(false)
	assert.Equal(t, "HTTP/1.1", proto)

	resp, err := http.Get("http://" + raw.Addr().String() + "/")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "plain HTTP on the TLS port")

	rotated := ca.Server(t, dir, "dataplane")
	_, serial = get(true)
	assert.Equal(t, rotated.Cert.SerialNumber.String(), serial, "the rotated certificate, without a restart")

	_, err = publicTLS(config.Config{TLSCertFile: first.CertFile, TLSKeyFile: ca.File}, mustListen(t))
	require.Error(t, err, "a certificate with a file that is no key")
}

func mustListen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	return ln
}
