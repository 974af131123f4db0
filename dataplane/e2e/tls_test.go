package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/e2e/internal/cluster"
	"github.com/mindrouter/mindrouter/dataplane/internal/enginesim"
	"github.com/mindrouter/mindrouter/tlsfiles/tlstest"
)

// TestMutualTLSBetweenPlanes: real processes, the control plane's gRPC port
// demanding client certificates of the cluster CA, the data plane presenting
// one. A streamed and a plain chat completion go through. A client without a
// certificate is refused by the control plane's port. Then the CA and every
// certificate are replaced on disk, the control plane is restarted (its
// clients must reconnect), and the data plane — not restarted — reconnects
// with the client certificate it now reads from its files.
func TestMutualTLSBetweenPlanes(t *testing.T) {
	t.Parallel()
	_, simURL := startSim(t, enginesim.Config{Engine: enginesim.EngineVLLM,
		Models: []enginesim.ModelSpec{{Name: "sim-chat", ContextLength: 4096}}, CompletionTokens: 6})
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "cluster")
	srv := ca.Server(t, dir, "controlplane")
	dp := ca.Client(t, dir, "dataplane")
	c := cluster.Start(t, cluster.Options{
		Backends:         []cluster.Backend{{Name: "sim", Engine: "vllm", URL: simURL}},
		ControlPlaneArgs: []string{"-tls-cert-file", srv.CertFile, "-tls-key-file", srv.Key, "-tls-client-ca-file", ca.File},
		DataPlaneArgs: []string{"-controlplane-ca-file", ca.File, "-controlplane-cert-file", dp.CertFile,
			"-controlplane-key-file", dp.Key, "-controlplane-server-name", "localhost"},
	})
	client := openaiClient(c, c.AdminKey)
	chat := func() {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		resp, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
			Model: "sim-chat", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hello")},
		})
		require.NoError(t, err, c.Logs())
		require.Len(t, resp.Choices, 1)
		stream := client.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{
			Model: "sim-chat", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hello")},
		})
		chunks := 0
		for stream.Next() {
			chunks++
		}
		require.NoError(t, stream.Err(), c.Logs())
		require.Positive(t, chunks)
	}
	chat()

	pool := x509.NewCertPool()
	pem, err := os.ReadFile(ca.File)
	require.NoError(t, err)
	require.True(t, pool.AppendCertsFromPEM(pem))
	conn, err := tls.Dial("tcp", c.GRPCAddr, &tls.Config{RootCAs: pool, ServerName: "localhost", NextProtos: []string{"h2"}})
	if err == nil {
		// TLS 1.3 reports the server's refusal of a missing certificate on the
		// first read, after the client's side of the handshake is done.
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = conn.Read(make([]byte, 1))
		conn.Close()
	}
	require.Error(t, err, "the control plane's port refuses a client without a certificate")

	ca2 := tlstest.NewCA(t, dir, "cluster") // replaces ca.File
	ca2.Server(t, dir, "controlplane")
	ca2.Client(t, dir, "dataplane")
	c.StopControlPlane()
	c.StartControlPlane()
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
			Model: "sim-chat", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("again")},
		})
		return err == nil
	}, 60*time.Second, 500*time.Millisecond, "the data plane reconnects with its rotated certificate: %s", c.Logs())
	chat()
}
