package store_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
)

func ptr[T any](v T) *T { return &v }

func testNodes(t *testing.T, s *store.Store) {
	ctx := ctxT(t)
	spec := store.NodeSpec{Name: "gpu-1", Hostname: "gpu-1.lab", AgentSecretSHA256: digest("secret")}
	n, created, err := s.RegisterNode(ctx, spec, false)
	require.NoError(t, err)
	require.True(t, created)
	assert.Equal(t, store.NodeUnknown, n.Status)
	assert.Equal(t, digest("secret"), n.AgentSecretSHA256)

	again, created, err := s.RegisterNode(ctx, spec, false)
	require.NoError(t, err)
	assert.False(t, created, "the same definition again is not a new node")
	assert.Equal(t, n.ID, again.ID)

	changed := store.NodeSpec{Name: "gpu-1", Hostname: "gpu-1.other"}
	_, _, err = s.RegisterNode(ctx, changed, false)
	require.ErrorIs(t, err, store.ErrConflict)
	up, created, err := s.RegisterNode(ctx, changed, true)
	require.NoError(t, err)
	assert.False(t, created)
	assert.Equal(t, n.ID, up.ID)
	assert.Equal(t, "gpu-1.other", up.Hostname)
	assert.Empty(t, up.AgentSecretSHA256, "upsert replaces the whole definition")

	_, _, err = s.RegisterNode(ctx, store.NodeSpec{}, false)
	require.ErrorIs(t, err, store.ErrInvalid)

	n2, _, err := s.RegisterNode(ctx, store.NodeSpec{Name: "gpu-2"}, false)
	require.NoError(t, err)
	_, err = s.UpdateNode(ctx, n2.ID, store.NodePatch{Name: ptr("gpu-1")})
	require.ErrorIs(t, err, store.ErrConflict)
	upd, err := s.UpdateNode(ctx, n2.ID, store.NodePatch{Hostname: ptr("h2"), AgentSecretSHA256: ptr(digest("s2"))})
	require.NoError(t, err)
	assert.Equal(t, "gpu-2", upd.Name)
	assert.Equal(t, "h2", upd.Hostname)
	_, err = s.UpdateNode(ctx, 4242, store.NodePatch{Hostname: ptr("x")})
	require.ErrorIs(t, err, store.ErrNotFound)

	seen := time.Now().Truncate(time.Microsecond)
	require.NoError(t, s.RecordNodeAgent(ctx, n.ID, store.NodeAgentInfo{
		Status: store.NodeOnline, LastSeen: seen, DriverVersion: "550.54", CUDAVersion: "12.4", AgentVersion: "0.1.0", GPUCount: 8,
	}))
	require.NoError(t, s.RecordNodeAgent(ctx, n.ID, store.NodeAgentInfo{Status: store.NodeOffline}))
	require.ErrorIs(t, s.RecordNodeAgent(ctx, n.ID, store.NodeAgentInfo{Status: "asleep"}), store.ErrInvalid)
	got, err := s.GetNodeByName(ctx, "gpu-1")
	require.NoError(t, err)
	assert.Equal(t, store.NodeOffline, got.Status)
	assert.Equal(t, "550.54", got.DriverVersion, "going offline keeps the inventory")
	assert.Equal(t, 8, got.GPUCount)
	require.NotNil(t, got.LastSeen)
	assert.True(t, seen.Equal(*got.LastSeen))

	_, _, err = s.RegisterBackend(ctx, store.BackendSpec{Name: "b1", URL: "http://gpu-1:11434", Engine: store.EngineOllama, NodeID: n.ID}, false)
	require.NoError(t, err)
	require.ErrorIs(t, s.DeleteNode(ctx, n.ID), store.ErrInUse)
	require.NoError(t, s.DeleteNode(ctx, n2.ID))
	require.ErrorIs(t, s.DeleteNode(ctx, n2.ID), store.ErrNotFound)
	nodes, err := s.ListNodes(ctx)
	require.NoError(t, err)
	require.Len(t, nodes, 1)
	_, err = s.GetNode(ctx, n2.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
}

func testGPUDevices(t *testing.T, s *store.Store) {
	ctx := ctxT(t)
	n, _, err := s.RegisterNode(ctx, store.NodeSpec{Name: "dgx"}, false)
	require.NoError(t, err)
	gpu := func(i int, name string) store.GPUDeviceSpec {
		return store.GPUDeviceSpec{Index: i, UUID: "GPU-" + name, Name: "H100 " + name, PCIBusID: "0000:01:00.0",
			ComputeCapability: "9.0", MemoryTotalBytes: 80 << 30, PowerLimitMilliwatts: 700_000}
	}
	require.NoError(t, s.UpsertGPUDevices(ctx, n.ID, []store.GPUDeviceSpec{gpu(0, "a"), gpu(1, "b"), gpu(2, "c")}))
	require.NoError(t, s.UpsertGPUDevices(ctx, n.ID, []store.GPUDeviceSpec{gpu(2, "c2"), gpu(0, "a")}))
	devs, err := s.ListGPUDevices(ctx)
	require.NoError(t, err)
	require.Len(t, devs, 2, "GPU 1 is no longer reported")
	assert.Equal(t, 0, devs[0].Index)
	assert.Equal(t, 2, devs[1].Index)
	assert.Equal(t, "GPU-c2", devs[1].UUID)
	assert.Equal(t, "dgx", devs[1].NodeName)
	assert.Equal(t, int64(80<<30), devs[1].MemoryTotalBytes)

	require.ErrorIs(t, s.UpsertGPUDevices(ctx, 5555, []store.GPUDeviceSpec{gpu(0, "x")}), store.ErrNotFound)
	require.ErrorIs(t, s.UpsertGPUDevices(ctx, n.ID, []store.GPUDeviceSpec{gpu(-1, "x")}), store.ErrInvalid)
	require.NoError(t, s.DeleteNode(ctx, n.ID))
	devs, err = s.ListGPUDevices(ctx)
	require.NoError(t, err)
	require.Empty(t, devs, "deleting a node removes its GPUs")
}

func testBackends(t *testing.T, s *store.Store) {
	ctx := ctxT(t)
	n, _, err := s.RegisterNode(ctx, store.NodeSpec{Name: "gpu-9"}, false)
	require.NoError(t, err)
	spec := store.BackendSpec{Name: "ollama-a", URL: "http://a:11434", Engine: store.EngineOllama,
		GPUMemoryGB: 80, GPUType: "H100", NodeID: n.ID, GPUIndices: []int{0, 1}}
	b, created, err := s.RegisterBackend(ctx, spec, false)
	require.NoError(t, err)
	require.True(t, created)
	assert.Equal(t, store.BackendUnknown, b.Status)
	assert.Equal(t, store.DefaultMaxConcurrent, b.MaxConcurrent)
	assert.Equal(t, "gpu-9", b.NodeName)
	assert.Equal(t, []int{0, 1}, b.GPUIndices)
	assert.False(t, b.CreatedAt.IsZero())

	again, created, err := s.RegisterBackend(ctx, spec, false)
	require.NoError(t, err)
	assert.False(t, created)
	assert.Equal(t, b.ID, again.ID)

	changed := spec
	changed.Priority = 5
	changed.NodeID = 0
	_, _, err = s.RegisterBackend(ctx, changed, false)
	require.ErrorIs(t, err, store.ErrConflict)
	up, created, err := s.RegisterBackend(ctx, changed, true)
	require.NoError(t, err)
	assert.False(t, created)
	assert.Equal(t, 5, up.Priority)
	assert.Zero(t, up.NodeID)
	assert.Empty(t, up.NodeName)

	tests := []struct {
		name   string
		spec   store.BackendSpec
		upsert bool
		want   error
	}{
		{"url clash", store.BackendSpec{Name: "other", URL: "http://a:11434", Engine: store.EngineVLLM}, false, store.ErrConflict},
		{"unknown node", store.BackendSpec{Name: "c", URL: "http://c", Engine: store.EngineVLLM, NodeID: 31337}, false, store.ErrNotFound},
		{"unknown engine", store.BackendSpec{Name: "d", URL: "http://d", Engine: "tgi"}, false, store.ErrInvalid},
		{"empty url", store.BackendSpec{Name: "e", Engine: store.EngineVLLM}, false, store.ErrInvalid},
	}
	for _, tc := range tests {
		_, _, err := s.RegisterBackend(ctx, tc.spec, tc.upsert)
		require.ErrorIs(t, err, tc.want, tc.name)
	}
	vb, _, err := s.RegisterBackend(ctx, store.BackendSpec{Name: "vllm-b", URL: "http://b:8000", Engine: store.EngineVLLM, MaxConcurrent: 16}, false)
	require.NoError(t, err)
	clash := spec
	clash.Name = "vllm-b"
	clash.Engine = store.EngineVLLM
	_, _, err = s.RegisterBackend(ctx, clash, true)
	require.ErrorIs(t, err, store.ErrConflict, "upsert onto another backend's URL")

	upd, err := s.UpdateBackend(ctx, vb.ID, store.BackendPatch{
		MaxConcurrent: ptr(2), NodeID: ptr(n.ID), GPUIndices: ptr([]int{3}), GPUType: ptr("A100"),
	})
	require.NoError(t, err)
	assert.Equal(t, 2, upd.MaxConcurrent)
	assert.Equal(t, "gpu-9", upd.NodeName)
	assert.Equal(t, []int{3}, upd.GPUIndices)
	assert.Equal(t, "http://b:8000", upd.URL, "unset fields stay")
	upd, err = s.UpdateBackend(ctx, vb.ID, store.BackendPatch{NodeID: ptr(int64(0)), GPUIndices: ptr([]int{})})
	require.NoError(t, err)
	assert.Zero(t, upd.NodeID)
	assert.Empty(t, upd.GPUIndices)
	_, err = s.UpdateBackend(ctx, vb.ID, store.BackendPatch{URL: ptr("http://a:11434")})
	require.ErrorIs(t, err, store.ErrConflict)
	_, err = s.UpdateBackend(ctx, vb.ID, store.BackendPatch{NodeID: ptr(int64(999))})
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.UpdateBackend(ctx, 999, store.BackendPatch{Priority: ptr(1)})
	require.ErrorIs(t, err, store.ErrNotFound)

	list, err := s.ListBackends(ctx)
	require.NoError(t, err)
	require.Len(t, list, 2)
	assert.Equal(t, "ollama-a", list[0].Name)
}

func testBackendHealth(t *testing.T, s *store.Store) {
	ctx := ctxT(t)
	b, _, err := s.RegisterBackend(ctx, store.BackendSpec{Name: "h", URL: "http://h:8000", Engine: store.EngineVLLM}, false)
	require.NoError(t, err)
	at := time.Now().Truncate(time.Microsecond)
	require.NoError(t, s.RecordHealth(ctx, b.ID, store.HealthRecord{
		Status: store.BackendHealthy, Version: "0.11.0", Simulated: true, CheckedAt: at, Success: true,
	}))
	got, err := s.GetBackend(ctx, b.ID)
	require.NoError(t, err)
	assert.Equal(t, store.BackendHealthy, got.Status)
	assert.Equal(t, "0.11.0", got.Version)
	assert.True(t, got.Simulated)
	require.NotNil(t, got.LastSuccess)
	assert.True(t, at.Equal(*got.LastSuccess))

	_, err = s.SetBackendStatus(ctx, b.ID, store.BackendDisabled)
	require.NoError(t, err)
	later := at.Add(time.Second)
	require.NoError(t, s.RecordHealth(ctx, b.ID, store.HealthRecord{
		Status: store.BackendUnhealthy, LastError: string(make([]byte, 5000)), CheckedAt: later, ConsecutiveFailures: 3,
	}))
	got, err = s.GetBackend(ctx, b.ID)
	require.NoError(t, err)
	assert.Equal(t, store.BackendDisabled, got.Status, "a health check never undoes an operator's disable")
	assert.Equal(t, 3, got.ConsecutiveFailures)
	assert.Equal(t, "0.11.0", got.Version, "an empty version keeps the last known one")
	assert.LessOrEqual(t, len(got.LastError), 1024)
	require.NotNil(t, got.LastHealthCheck)
	assert.True(t, later.Equal(*got.LastHealthCheck))
	assert.True(t, at.Equal(*got.LastSuccess))

	_, err = s.SetBackendStatus(ctx, b.ID, "sleepy")
	require.ErrorIs(t, err, store.ErrInvalid)
	_, err = s.SetBackendStatus(ctx, 4040, store.BackendHealthy)
	require.ErrorIs(t, err, store.ErrNotFound)
	require.ErrorIs(t, s.RecordHealth(ctx, 4040, store.HealthRecord{Status: store.BackendHealthy}), store.ErrNotFound)
}

func testSyncModels(t *testing.T, s *store.Store) {
	ctx := ctxT(t)
	b, _, err := s.RegisterBackend(ctx, store.BackendSpec{Name: "m", URL: "http://m:11434", Engine: store.EngineOllama}, false)
	require.NoError(t, err)
	other, _, err := s.RegisterBackend(ctx, store.BackendSpec{Name: "o", URL: "http://o:11434", Engine: store.EngineOllama}, false)
	require.NoError(t, err)
	require.NoError(t, s.SyncModels(ctx, other.ID, []store.ModelSpec{{Name: "llama3:8b"}}))

	require.NoError(t, s.SyncModels(ctx, b.ID, []store.ModelSpec{
		{Name: "llama3:8b", Family: "llama", ContextLength: 8192, Capabilities: []string{"chat", "tools"}, Loaded: true,
			ParameterSize: "8B", Quantization: "Q4_K_M", SizeBytes: 4 << 30},
		{Name: "nomic-embed", Capabilities: []string{"embedding"}, EmbeddingLength: 768},
	}))
	require.NoError(t, s.SyncModels(ctx, b.ID, []store.ModelSpec{
		{Name: "llama3:8b", Family: "llama", ContextLength: 4096, Capabilities: []string{"chat"}},
		{Name: "qwen3:4b", Family: "qwen3", ContextLength: 32768, Capabilities: []string{"chat", "thinking"}},
	}))
	models, err := s.ListModels(ctx)
	require.NoError(t, err)
	var names []string
	for _, m := range models {
		names = append(names, m.BackendName+"/"+m.Name)
	}
	assert.Equal(t, []string{"m/llama3:8b", "m/qwen3:4b", "o/llama3:8b"}, names)
	assert.Equal(t, int64(4096), models[0].ContextLength, "updated in place")
	assert.Equal(t, []string{"chat"}, models[0].Capabilities)
	assert.False(t, models[0].Loaded)
	assert.Equal(t, b.ID, models[0].BackendID)

	require.NoError(t, s.SyncModels(ctx, b.ID, nil))
	models, err = s.ListModels(ctx)
	require.NoError(t, err)
	require.Len(t, models, 1, "an empty list removes the backend's models only")

	require.ErrorIs(t, s.SyncModels(ctx, 8080, []store.ModelSpec{{Name: "x"}}), store.ErrNotFound)
	require.ErrorIs(t, s.SyncModels(ctx, b.ID, []store.ModelSpec{{Name: ""}}), store.ErrInvalid)

	require.NoError(t, s.DeleteBackend(ctx, other.ID))
	models, err = s.ListModels(ctx)
	require.NoError(t, err)
	require.Empty(t, models, "deleting a backend removes its models")
	require.ErrorIs(t, s.DeleteBackend(ctx, other.ID), store.ErrNotFound)
}

// testSeedBackend: a seed creates what is missing and never overwrites what an
// admin changed, however often it is given again.
func testSeedBackend(t *testing.T, s *store.Store) {
	ctx := ctxT(t)
	spec := store.BackendSpec{Name: "seeded", URL: "http://seeded:11434", Engine: store.EngineOllama}
	b, created, err := s.SeedBackend(ctx, spec)
	require.NoError(t, err)
	require.True(t, created)
	assert.Equal(t, store.DefaultMaxConcurrent, b.MaxConcurrent)

	_, err = s.UpdateBackend(ctx, b.ID, store.BackendPatch{MaxConcurrent: ptr(150), Priority: ptr(5), URL: ptr("http://moved:11434")})
	require.NoError(t, err)
	for range 2 {
		again, created, err := s.SeedBackend(ctx, spec)
		require.NoError(t, err)
		assert.False(t, created)
		assert.Equal(t, b.ID, again.ID)
		assert.Equal(t, 150, again.MaxConcurrent, "the admin's max_concurrent survives the seed")
		assert.Equal(t, 5, again.Priority, "the admin's priority survives the seed")
		assert.Equal(t, "http://moved:11434", again.URL, "the admin's URL survives the seed")
	}

	// The seed's URL is now free; a second seed may not take another backend's URL.
	_, _, err = s.SeedBackend(ctx, store.BackendSpec{Name: "thief", URL: "http://moved:11434", Engine: store.EngineVLLM})
	require.ErrorIs(t, err, store.ErrConflict)
	_, _, err = s.SeedBackend(ctx, store.BackendSpec{Name: "bad", URL: "http://bad", Engine: "tgi"})
	require.ErrorIs(t, err, store.ErrInvalid)
}
