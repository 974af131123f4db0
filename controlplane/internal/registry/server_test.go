package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/mindrouter/mindrouter/controlplane/internal/health/healthtest"
	"github.com/mindrouter/mindrouter/controlplane/internal/store"
	adminv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/admin/v1"
	nodeagentv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/nodeagent/v1"
)

// mapErrors stands in for the server package's error mapping, which the
// control plane installs in front of every service.
func mapErrors(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	resp, err := h(ctx, req)
	if _, ok := status.FromError(err); ok || err == nil {
		return resp, err
	}
	for sentinel, code := range map[error]codes.Code{
		store.ErrNotFound: codes.NotFound, store.ErrConflict: codes.AlreadyExists, store.ErrInUse: codes.FailedPrecondition,
		ErrInvalidArgument: codes.InvalidArgument,
	} {
		if errors.Is(err, sentinel) {
			return nil, status.Error(code, err.Error())
		}
	}
	return nil, status.Error(codes.Internal, err.Error())
}

type fakeGPUs []*adminv1.GPU

func (g fakeGPUs) Latest() []*adminv1.GPU { return g }

func newAdminClient(t *testing.T, f *fixture) adminv1.RegistryServiceClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer(grpc.UnaryInterceptor(mapErrors))
	adminv1.RegisterRegistryServiceServer(srv, NewAdminServer(f.r))
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return adminv1.NewRegistryServiceClient(conn)
}

func TestAdminBackends(t *testing.T) {
	t.Parallel()
	eng := healthtest.NewOllama(t, "0.17.4-sim", healthtest.Model{Name: "llama3.2:latest", Family: "llama", ContextLength: 131072, Capabilities: []string{"completion", "tools"}, Loaded: true})
	f := newFixture(t, Options{}, nil)
	c := newAdminClient(t, f)
	ctx := t.Context()

	req := &adminv1.RegisterBackendRequest{Name: " sim ", Url: eng.URL() + "/", Engine: "Ollama", GpuIndices: []int32{0, 1}}
	resp, err := c.RegisterBackend(ctx, req)
	require.NoError(t, err)
	require.True(t, resp.GetCreated())
	b := resp.GetBackend()
	assert.Equal(t, "sim", b.GetName())
	assert.Equal(t, eng.URL(), b.GetUrl(), "trailing slash dropped")
	assert.Equal(t, "ollama", b.GetEngine())
	assert.EqualValues(t, DefaultMaxConcurrent, b.GetMaxConcurrent())
	assert.Equal(t, "healthy", b.GetStatus())
	assert.True(t, b.GetSimulated())
	assert.Equal(t, []string{"llama3.2:latest"}, b.GetModels())
	assert.Equal(t, []int32{0, 1}, b.GetGpuIndices())
	assert.NotNil(t, b.GetLastSuccess())

	again, err := c.RegisterBackend(ctx, req)
	require.NoError(t, err)
	require.False(t, again.GetCreated(), "registering the same definition is idempotent")
	require.Equal(t, b.GetId(), again.GetBackend().GetId())

	req.MaxConcurrent = 8
	_, err = c.RegisterBackend(ctx, req)
	require.Equal(t, codes.AlreadyExists, status.Code(err), "a different definition under the same name conflicts")
	req.Upsert = true
	up, err := c.RegisterBackend(ctx, req)
	require.NoError(t, err)
	require.False(t, up.GetCreated())
	require.EqualValues(t, 8, up.GetBackend().GetMaxConcurrent())

	f.inFlight.Set(b.GetId(), 3)
	got, err := c.GetBackend(ctx, &adminv1.GetBackendRequest{Id: b.GetId()})
	require.NoError(t, err)
	require.EqualValues(t, 3, got.GetBackend().GetCurrentConcurrent())

	list, err := c.ListBackends(ctx, &adminv1.ListBackendsRequest{})
	require.NoError(t, err)
	require.Len(t, list.GetBackends(), 1)

	models, err := c.ListModels(ctx, &adminv1.ListModelsRequest{})
	require.NoError(t, err)
	require.Len(t, models.GetModels(), 1)
	m := models.GetModels()[0]
	assert.EqualValues(t, DefaultContextCap, m.GetContextLength())
	assert.EqualValues(t, 131072, m.GetModelMaxContext())
	assert.Equal(t, "sim", m.GetBackendName())
	assert.True(t, m.GetLoaded())

	upd, err := c.UpdateBackend(ctx, &adminv1.UpdateBackendRequest{Id: b.GetId(), Priority: new(int32(5)), SetGpuIndices: true})
	require.NoError(t, err)
	require.EqualValues(t, 5, upd.GetBackend().GetPriority())
	require.Empty(t, upd.GetBackend().GetGpuIndices())
	require.EqualValues(t, 8, upd.GetBackend().GetMaxConcurrent(), "unset fields stay")

	dis, err := c.DisableBackend(ctx, &adminv1.DisableBackendRequest{Id: b.GetId()})
	require.NoError(t, err)
	require.Equal(t, "disabled", dis.GetBackend().GetStatus())
	ref, err := c.RefreshBackend(ctx, &adminv1.RefreshBackendRequest{Id: b.GetId()})
	require.NoError(t, err)
	require.Equal(t, "disabled", ref.GetBackend().GetStatus())
	en, err := c.EnableBackend(ctx, &adminv1.EnableBackendRequest{Id: b.GetId()})
	require.NoError(t, err)
	require.Equal(t, "healthy", en.GetBackend().GetStatus())
	dr, err := c.DrainBackend(ctx, &adminv1.DrainBackendRequest{Id: b.GetId()})
	require.NoError(t, err)
	require.Equal(t, "draining", dr.GetBackend().GetStatus(), "requests in flight keep it draining")

	_, err = c.RemoveBackend(ctx, &adminv1.RemoveBackendRequest{Id: b.GetId()})
	require.Equal(t, codes.FailedPrecondition, status.Code(err), "requests in flight")
	f.inFlight.Set(b.GetId(), 0)
	rm, err := c.RemoveBackend(ctx, &adminv1.RemoveBackendRequest{Id: b.GetId()})
	require.NoError(t, err)
	require.True(t, rm.GetDeleted())
	_, err = c.GetBackend(ctx, &adminv1.GetBackendRequest{Id: b.GetId()})
	require.Equal(t, codes.NotFound, status.Code(err))
	_, err = c.RefreshBackend(ctx, &adminv1.RefreshBackendRequest{Id: b.GetId()})
	require.Equal(t, codes.NotFound, status.Code(err))
}

func TestAdminValidation(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{}, nil)
	c := newAdminClient(t, f)
	ok := &adminv1.RegisterBackendRequest{Name: "b", Url: "http://gpu1:11434", Engine: "ollama"}
	with := func(change func(r *adminv1.RegisterBackendRequest)) *adminv1.RegisterBackendRequest {
		r := &adminv1.RegisterBackendRequest{Name: ok.Name, Url: ok.Url, Engine: ok.Engine}
		change(r)
		return r
	}
	tests := []struct {
		name string
		req  *adminv1.RegisterBackendRequest
		msg  string
	}{
		{"empty name", with(func(r *adminv1.RegisterBackendRequest) { r.Name = "  " }), "name is required"},
		{"unknown engine", with(func(r *adminv1.RegisterBackendRequest) { r.Engine = "tgi" }), `engine must be "ollama", "vllm", "tts" or "stt"`},
		{"no engine", with(func(r *adminv1.RegisterBackendRequest) { r.Engine = "" }), `engine must be`},
		{"not http", with(func(r *adminv1.RegisterBackendRequest) { r.Url = "ftp://gpu1" }), "url must be"},
		{"no host", with(func(r *adminv1.RegisterBackendRequest) { r.Url = "http://" }), "url must be"},
		{"relative", with(func(r *adminv1.RegisterBackendRequest) { r.Url = "gpu1:11434" }), "url must be"},
		{"query", with(func(r *adminv1.RegisterBackendRequest) { r.Url = "http://gpu1?x=1" }), "query"},
		{"negative concurrency", with(func(r *adminv1.RegisterBackendRequest) { r.MaxConcurrent = -1 }), "max_concurrent"},
		{"negative gpu index", with(func(r *adminv1.RegisterBackendRequest) { r.GpuIndices = []int32{-1} }), "gpu_indices"},
		{"negative memory", with(func(r *adminv1.RegisterBackendRequest) { r.GpuMemoryGb = -1 }), "gpu_memory_gb"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := c.RegisterBackend(t.Context(), tc.req)
			require.Equal(t, codes.InvalidArgument, status.Code(err))
			require.Contains(t, status.Convert(err).Message(), tc.msg)
		})
	}

	ctx := t.Context()
	_, err := c.GetBackend(ctx, &adminv1.GetBackendRequest{})
	require.Equal(t, codes.InvalidArgument, status.Code(err))
	_, err = c.UpdateBackend(ctx, &adminv1.UpdateBackendRequest{Id: 1, MaxConcurrent: new(int32(0))})
	require.Equal(t, codes.InvalidArgument, status.Code(err))
	_, err = c.UpdateBackend(ctx, &adminv1.UpdateBackendRequest{Id: 1, Url: new("nope")})
	require.Equal(t, codes.InvalidArgument, status.Code(err))
	_, err = c.UpdateBackend(ctx, &adminv1.UpdateBackendRequest{Id: 99, Priority: new(int32(1))})
	require.Equal(t, codes.NotFound, status.Code(err))
	_, err = c.RegisterNode(ctx, &adminv1.RegisterNodeRequest{})
	require.Equal(t, codes.InvalidArgument, status.Code(err))
	_, err = c.EnableBackend(ctx, &adminv1.EnableBackendRequest{Id: -3})
	require.Equal(t, codes.InvalidArgument, status.Code(err))
	_, err = c.RegisterBackend(ctx, with(func(r *adminv1.RegisterBackendRequest) { r.Url = "http://127.0.0.1:1"; r.NodeId = 42 }))
	require.Equal(t, codes.NotFound, status.Code(err), "unknown node")
}

func TestAdminNodes(t *testing.T) {
	t.Parallel()
	gpus := fakeGPUs{{NodeId: 1, NodeName: "gpu1", Sample: &nodeagentv1.GPUSample{Index: 0, Name: "NVIDIA H100"}}}
	f := newFixture(t, Options{GPUs: gpus}, nil)
	c := newAdminClient(t, f)
	ctx := t.Context()
	digest := func(s string) string { sum := sha256.Sum256([]byte(s)); return hex.EncodeToString(sum[:]) }

	req := &adminv1.RegisterNodeRequest{Name: "gpu1", Hostname: "gpu1.example.edu", AgentSecret: "s3cret"}
	resp, err := c.RegisterNode(ctx, req)
	require.NoError(t, err)
	require.True(t, resp.GetCreated())
	n := resp.GetNode()
	require.True(t, n.GetAgentSecretSet())
	require.NotContains(t, n.String(), "s3cret")
	require.NotContains(t, n.String(), digest("s3cret"))
	stored, err := f.st.GetNode(ctx, n.GetId())
	require.NoError(t, err)
	require.Equal(t, digest("s3cret"), stored.AgentSecretSHA256, "only the digest is stored")

	again, err := c.RegisterNode(ctx, req)
	require.NoError(t, err)
	require.False(t, again.GetCreated())
	req.AgentSecret = "other"
	_, err = c.RegisterNode(ctx, req)
	require.Equal(t, codes.AlreadyExists, status.Code(err))

	// A backend on the node shows the node's name, and follows a rename.
	br, err := c.RegisterBackend(ctx, &adminv1.RegisterBackendRequest{Name: "b", Url: "http://127.0.0.1:1", Engine: "vllm", NodeId: n.GetId()})
	require.NoError(t, err)
	require.Equal(t, "gpu1", br.GetBackend().GetNodeName())
	un, err := c.UpdateNode(ctx, &adminv1.UpdateNodeRequest{Id: n.GetId(), Name: new("gpu-one"), AgentSecret: new("rotated")})
	require.NoError(t, err)
	require.Equal(t, "gpu-one", un.GetNode().GetName())
	stored, _ = f.st.GetNode(ctx, n.GetId())
	require.Equal(t, digest("rotated"), stored.AgentSecretSHA256)
	gb, err := c.GetBackend(ctx, &adminv1.GetBackendRequest{Id: br.GetBackend().GetId()})
	require.NoError(t, err)
	require.Equal(t, "gpu-one", gb.GetBackend().GetNodeName())

	_, err = c.DeleteNode(ctx, &adminv1.DeleteNodeRequest{Id: n.GetId()})
	require.Equal(t, codes.FailedPrecondition, status.Code(err), "a backend references it")
	_, err = c.RemoveBackend(ctx, &adminv1.RemoveBackendRequest{Id: br.GetBackend().GetId()})
	require.NoError(t, err)
	del, err := c.DeleteNode(ctx, &adminv1.DeleteNodeRequest{Id: n.GetId()})
	require.NoError(t, err)
	require.True(t, del.GetDeleted())
	nodes, err := c.ListNodes(ctx, &adminv1.ListNodesRequest{})
	require.NoError(t, err)
	require.Empty(t, nodes.GetNodes())
	_, err = c.GetNode(ctx, &adminv1.GetNodeRequest{Id: n.GetId()})
	require.Equal(t, codes.NotFound, status.Code(err))

	g, err := c.ListGPUs(ctx, &adminv1.ListGPUsRequest{})
	require.NoError(t, err)
	require.Len(t, g.GetGpus(), 1)
	require.Equal(t, "NVIDIA H100", g.GetGpus()[0].GetSample().GetName())
}
