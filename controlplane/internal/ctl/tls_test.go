package ctl_test

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/tlsfiles/tlstest"
)

// TestCLIOverMutualTLS: a control plane serving its gRPC port with mutual TLS
// and its REST port with TLS, certificates generated here. mindrouterctl with
// the CA and a client certificate works; without a client certificate, or
// trusting another CA, it is refused before any API key is looked at. The
// server certificate's files are replaced while the control plane runs and
// the next handshake presents the new one; the REST port answers over HTTPS.
func TestCLIOverMutualTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "cluster")
	srv := ca.Server(t, dir, "controlplane")
	admin := ca.Client(t, dir, "admin")
	other := tlstest.NewCA(t, dir, "other")
	rest := ca.Server(t, dir, "rest")
	addr, restAddr, key := startControlPlaneREST(t,
		"-tls-cert-file", srv.CertFile, "-tls-key-file", srv.Key, "-tls-client-ca-file", ca.File,
		"-rest-tls-cert-file", rest.CertFile, "-rest-tls-key-file", rest.Key)
	env := []string{"MINDROUTER_ADDR=" + addr, "MINDROUTER_API_KEY=" + key, "MINDROUTER_CA_FILE=" + ca.File}

	out, errOut, code := ctl(t, append(env, "MINDROUTER_CERT_FILE="+admin.CertFile, "MINDROUTER_KEY_FILE="+admin.Key), "groups", "list")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "faculty")

	_, errOut, code = ctl(t, env, "groups", "list")
	assert.Equal(t, 1, code, "no client certificate")
	assert.Contains(t, errOut, "Unavailable: ")
	_, errOut, code = ctl(t, []string{"MINDROUTER_ADDR=" + addr, "MINDROUTER_API_KEY=" + key, "MINDROUTER_CA_FILE=" + other.File},
		"--cert-file", admin.CertFile, "--key-file", admin.Key, "groups", "list")
	assert.Equal(t, 1, code, "a control plane its CA did not sign")
	assert.Contains(t, errOut, "certificate")
	_, _, code = ctl(t, []string{"MINDROUTER_ADDR=" + addr, "MINDROUTER_API_KEY=" + key}, "groups", "list")
	assert.Equal(t, 1, code, "plaintext against a TLS port")

	serial := func() string {
		t.Helper()
		pool := x509.NewCertPool()
		pem, err := os.ReadFile(ca.File)
		require.NoError(t, err)
		require.True(t, pool.AppendCertsFromPEM(pem))
		pair, err := tls.LoadX509KeyPair(admin.CertFile, admin.Key)
		require.NoError(t, err)
		c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, NextProtos: []string{"h2"}, ServerName: "localhost"})
		require.NoError(t, err)
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	require.Equal(t, srv.Cert.SerialNumber.String(), serial())
	rotated := ca.Server(t, dir, "controlplane")
	assert.Equal(t, rotated.Cert.SerialNumber.String(), serial(), "the rotated certificate is served without a restart")
	out, errOut, code = ctl(t, append(env, "MINDROUTER_CERT_FILE="+admin.CertFile, "MINDROUTER_KEY_FILE="+admin.Key), "users", "list")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "USERNAME")

	pool := x509.NewCertPool()
	pem, err := os.ReadFile(ca.File)
	require.NoError(t, err)
	require.True(t, pool.AppendCertsFromPEM(pem))
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get("https://" + restAddr + "/api/admin/groups")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "HTTPS reaches the gateway, which still wants a key: %s", body)
	req, err := http.NewRequest(http.MethodGet, "https://"+restAddr+"/api/admin/groups", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err = client.Do(req)
	require.NoError(t, err)
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	assert.Contains(t, string(body), "faculty")
	resp, err = http.Get("http://" + restAddr + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "plain HTTP on the TLS port is refused")
}
