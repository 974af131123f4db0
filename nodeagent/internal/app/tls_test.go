package app_test

import (
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/mindrouter/mindrouter/nodeagent/internal/app"
	"github.com/mindrouter/mindrouter/nodeagent/internal/nvmltest"
	nodeagentv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/nodeagent/v1"
	"github.com/mindrouter/mindrouter/tlsfiles"
	"github.com/mindrouter/mindrouter/tlsfiles/tlstest"
)

// serveMutualTLS is serve behind mutual TLS: the server's certificate and the
// client CA are files of dir, as the control plane reads them.
func serveMutualTLS(t *testing.T, ca *tlstest.CA, dir string) (*telemetryServer, string) {
	t.Helper()
	pair := ca.Server(t, dir, "controlplane")
	src, err := tlsfiles.Load(tlsfiles.Files{CertFile: pair.CertFile, KeyFile: pair.Key, CAFile: ca.File})
	require.NoError(t, err)
	tc, err := src.ServerConfig("h2")
	require.NoError(t, err)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ts := &telemetryServer{}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(tc)))
	nodeagentv1.RegisterTelemetryServiceServer(srv, ts)
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(lis) }()
	t.Cleanup(func() { srv.Stop(); <-done })
	return ts, lis.Addr().String()
}

// TestAgentOverMutualTLS: with the CA and a client certificate the agent's
// stream reaches a control plane that requires mutual TLS; with the CA alone
// (no certificate) nothing gets through.
func TestAgentOverMutualTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "cluster")
	agent := ca.Client(t, dir, "agent")

	ts, addr := serveMutualTLS(t, ca, dir)
	stop := runAgent(t, []string{"-control-plane", addr, "-node-name", "dgx-tls", "-secret-file", secretFile(t),
		"-tls-ca-file", ca.File, "-tls-cert-file", agent.CertFile, "-tls-key-file", agent.Key, "-tls-server-name", "localhost"},
		&syncBuffer{}, app.WithNVML(nvmltest.DGXH100()), app.WithGetenv(noEnv))
	require.Eventually(t, func() bool {
		_, samples := ts.received()
		return len(samples) >= 1
	}, 10*time.Second, 10*time.Millisecond, "samples arrive over mutual TLS")
	stop()

	refused, addr2 := serveMutualTLS(t, ca, t.TempDir())
	stop = runAgent(t, []string{"-control-plane", addr2, "-node-name", "dgx-anon", "-secret-file", secretFile(t),
		"-tls-ca-file", ca.File, "-tls-server-name", "localhost"},
		&syncBuffer{}, app.WithNVML(nvmltest.DGXH100()), app.WithGetenv(noEnv))
	time.Sleep(2 * time.Second)
	stop()
	nodes, samples := refused.received()
	require.Empty(t, nodes, "an agent without a client certificate is refused")
	require.Empty(t, samples)
}
