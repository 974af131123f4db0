package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/mindrouter/mindrouter/controlplane/internal/refusal"
	"github.com/mindrouter/mindrouter/controlplane/internal/store"
	adminv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/admin/v1"
)

// DefaultMaxConcurrent is a new backend's concurrency when none is given.
const DefaultMaxConcurrent = 4

// maxNameLen bounds node and backend names.
const maxNameLen = 255

// AdminServer serves adminv1.RegistryService over a Registry. It validates
// input (answering InvalidArgument itself) and returns the registry's and
// store's domain errors unchanged for the server package to map.
type AdminServer struct {
	adminv1.UnimplementedRegistryServiceServer
	r *Registry
}

// NewAdminServer returns the RegistryService for r.
func NewAdminServer(r *Registry) *AdminServer { return &AdminServer{r: r} }

var _ adminv1.RegistryServiceServer = (*AdminServer)(nil)

// RegisterNode creates a node; the agent secret is stored as its SHA-256 digest.
func (s *AdminServer) RegisterNode(ctx context.Context, req *adminv1.RegisterNodeRequest) (*adminv1.RegisterNodeResponse, error) {
	name, err := validName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	spec := store.NodeSpec{Name: name, Hostname: strings.TrimSpace(req.GetHostname()), AgentSecretSHA256: secretDigest(req.GetAgentSecret())}
	n, created, err := s.r.RegisterNode(ctx, spec, req.GetUpsert())
	if err != nil {
		return nil, err
	}
	return &adminv1.RegisterNodeResponse{Node: nodeProto(n), Created: created}, nil
}

// ListNodes lists nodes.
func (s *AdminServer) ListNodes(ctx context.Context, _ *adminv1.ListNodesRequest) (*adminv1.ListNodesResponse, error) {
	ns, err := s.r.ListNodes(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*adminv1.Node, len(ns))
	for i, n := range ns {
		out[i] = nodeProto(n)
	}
	return &adminv1.ListNodesResponse{Nodes: out}, nil
}

// GetNode returns one node.
func (s *AdminServer) GetNode(ctx context.Context, req *adminv1.GetNodeRequest) (*adminv1.GetNodeResponse, error) {
	if err := validID(req.GetId()); err != nil {
		return nil, err
	}
	n, err := s.r.GetNode(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	return &adminv1.GetNodeResponse{Node: nodeProto(n)}, nil
}

// UpdateNode changes the fields that are set; an empty agent secret removes it.
func (s *AdminServer) UpdateNode(ctx context.Context, req *adminv1.UpdateNodeRequest) (*adminv1.UpdateNodeResponse, error) {
	if err := validID(req.GetId()); err != nil {
		return nil, err
	}
	var patch store.NodePatch
	if req.Name != nil {
		name, err := validName("name", req.GetName())
		if err != nil {
			return nil, err
		}
		patch.Name = &name
	}
	if req.Hostname != nil {
		h := strings.TrimSpace(req.GetHostname())
		patch.Hostname = &h
	}
	if req.AgentSecret != nil {
		d := secretDigest(req.GetAgentSecret())
		patch.AgentSecretSHA256 = &d
	}
	n, err := s.r.UpdateNode(ctx, req.GetId(), patch)
	if err != nil {
		return nil, err
	}
	return &adminv1.UpdateNodeResponse{Node: nodeProto(n)}, nil
}

// DeleteNode removes a node that no backend references.
func (s *AdminServer) DeleteNode(ctx context.Context, req *adminv1.DeleteNodeRequest) (*adminv1.DeleteNodeResponse, error) {
	if err := validID(req.GetId()); err != nil {
		return nil, err
	}
	if err := s.r.DeleteNode(ctx, req.GetId()); err != nil {
		return nil, err
	}
	return &adminv1.DeleteNodeResponse{Deleted: true}, nil
}

// RegisterBackend creates a backend and discovers its models.
func (s *AdminServer) RegisterBackend(ctx context.Context, req *adminv1.RegisterBackendRequest) (*adminv1.RegisterBackendResponse, error) {
	name, err := validName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	u, err := validURL(req.GetUrl())
	if err != nil {
		return nil, err
	}
	engine := Engine(strings.ToLower(strings.TrimSpace(req.GetEngine())))
	switch engine {
	case EngineOllama, EngineVLLM, EngineTTS, EngineSTT:
	default:
		return nil, invalidf("engine must be %q, %q, %q or %q", EngineOllama, EngineVLLM, EngineTTS, EngineSTT)
	}
	maxConc := int(req.GetMaxConcurrent())
	if maxConc == 0 {
		maxConc = DefaultMaxConcurrent
	}
	if err := validSettings(maxConc, req.GetGpuMemoryGb(), req.GetNodeId(), req.GetGpuIndices()); err != nil {
		return nil, err
	}
	spec := store.BackendSpec{
		Name: name, URL: u, Engine: string(engine), MaxConcurrent: maxConc, Priority: int(req.GetPriority()),
		GPUMemoryGB: req.GetGpuMemoryGb(), GPUType: strings.TrimSpace(req.GetGpuType()), NodeID: req.GetNodeId(),
		GPUIndices: ints(req.GetGpuIndices()),
	}
	b, created, err := s.r.RegisterBackend(ctx, spec, req.GetUpsert())
	if err != nil {
		return nil, err
	}
	return &adminv1.RegisterBackendResponse{Backend: s.backend(b), Created: created}, nil
}

// ListBackends lists backends with their live state.
func (s *AdminServer) ListBackends(context.Context, *adminv1.ListBackendsRequest) (*adminv1.ListBackendsResponse, error) {
	bs := s.r.ListBackends()
	out := make([]*adminv1.Backend, len(bs))
	for i, b := range bs {
		out[i] = s.backend(b)
	}
	return &adminv1.ListBackendsResponse{Backends: out}, nil
}

// GetBackend returns one backend.
func (s *AdminServer) GetBackend(_ context.Context, req *adminv1.GetBackendRequest) (*adminv1.GetBackendResponse, error) {
	if err := validID(req.GetId()); err != nil {
		return nil, err
	}
	b, err := s.r.GetBackend(req.GetId())
	if err != nil {
		return nil, err
	}
	return &adminv1.GetBackendResponse{Backend: s.backend(b)}, nil
}

// UpdateBackend changes the fields that are set.
func (s *AdminServer) UpdateBackend(ctx context.Context, req *adminv1.UpdateBackendRequest) (*adminv1.UpdateBackendResponse, error) {
	if err := validID(req.GetId()); err != nil {
		return nil, err
	}
	patch, err := backendPatch(req)
	if err != nil {
		return nil, err
	}
	b, err := s.r.UpdateBackend(ctx, req.GetId(), patch)
	if err != nil {
		return nil, err
	}
	return &adminv1.UpdateBackendResponse{Backend: s.backend(b)}, nil
}

// backendPatch validates the set fields of an update.
func backendPatch(req *adminv1.UpdateBackendRequest) (store.BackendPatch, error) {
	var p store.BackendPatch
	if req.Name != nil {
		name, err := validName("name", req.GetName())
		if err != nil {
			return p, err
		}
		p.Name = &name
	}
	if req.Url != nil {
		u, err := validURL(req.GetUrl())
		if err != nil {
			return p, err
		}
		p.URL = &u
	}
	maxConc := 1
	if req.MaxConcurrent != nil {
		maxConc = int(req.GetMaxConcurrent())
		p.MaxConcurrent = &maxConc
	}
	if err := validSettings(maxConc, req.GetGpuMemoryGb(), req.GetNodeId(), req.GetGpuIndices()); err != nil {
		return p, err
	}
	if req.Priority != nil {
		v := int(req.GetPriority())
		p.Priority = &v
	}
	if req.GpuMemoryGb != nil {
		v := req.GetGpuMemoryGb()
		p.GPUMemoryGB = &v
	}
	if req.GpuType != nil {
		v := strings.TrimSpace(req.GetGpuType())
		p.GPUType = &v
	}
	if req.NodeId != nil {
		v := req.GetNodeId()
		p.NodeID = &v
	}
	if req.GetSetGpuIndices() {
		v := ints(req.GetGpuIndices())
		p.GPUIndices = &v
	}
	return p, nil
}

// EnableBackend puts a backend back into service.
func (s *AdminServer) EnableBackend(ctx context.Context, req *adminv1.EnableBackendRequest) (*adminv1.EnableBackendResponse, error) {
	b, err := s.byID(ctx, req.GetId(), s.r.EnableBackend)
	if err != nil {
		return nil, err
	}
	return &adminv1.EnableBackendResponse{Backend: b}, nil
}

// DisableBackend takes a backend out of service.
func (s *AdminServer) DisableBackend(ctx context.Context, req *adminv1.DisableBackendRequest) (*adminv1.DisableBackendResponse, error) {
	b, err := s.byID(ctx, req.GetId(), s.r.DisableBackend)
	if err != nil {
		return nil, err
	}
	return &adminv1.DisableBackendResponse{Backend: b}, nil
}

// DrainBackend stops new requests to a backend.
func (s *AdminServer) DrainBackend(ctx context.Context, req *adminv1.DrainBackendRequest) (*adminv1.DrainBackendResponse, error) {
	b, err := s.byID(ctx, req.GetId(), s.r.DrainBackend)
	if err != nil {
		return nil, err
	}
	return &adminv1.DrainBackendResponse{Backend: b}, nil
}

// RefreshBackend re-runs health and model discovery now.
func (s *AdminServer) RefreshBackend(ctx context.Context, req *adminv1.RefreshBackendRequest) (*adminv1.RefreshBackendResponse, error) {
	b, err := s.byID(ctx, req.GetId(), s.r.RefreshBackend)
	if err != nil {
		return nil, err
	}
	return &adminv1.RefreshBackendResponse{Backend: b}, nil
}

// RemoveBackend deletes a backend with no requests in flight.
func (s *AdminServer) RemoveBackend(ctx context.Context, req *adminv1.RemoveBackendRequest) (*adminv1.RemoveBackendResponse, error) {
	if err := validID(req.GetId()); err != nil {
		return nil, err
	}
	if err := s.r.RemoveBackend(ctx, req.GetId()); err != nil {
		return nil, err
	}
	return &adminv1.RemoveBackendResponse{Deleted: true}, nil
}

// ListModels lists every model on every backend.
func (s *AdminServer) ListModels(context.Context, *adminv1.ListModelsRequest) (*adminv1.ListModelsResponse, error) {
	ms := s.r.ListModels()
	out := make([]*adminv1.Model, len(ms))
	for i, m := range ms {
		out[i] = modelProto(m, s.r.ContextCap())
	}
	return &adminv1.ListModelsResponse{Models: out}, nil
}

// ListGPUs returns the latest sample of every GPU.
func (s *AdminServer) ListGPUs(context.Context, *adminv1.ListGPUsRequest) (*adminv1.ListGPUsResponse, error) {
	return &adminv1.ListGPUsResponse{Gpus: s.r.GPUs()}, nil
}

// byID validates an id and runs a backend operation.
func (s *AdminServer) byID(ctx context.Context, id int64, op func(context.Context, int64) (Backend, error)) (*adminv1.Backend, error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	b, err := op(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.backend(b), nil
}

// backend converts a backend with its current concurrency.
func (s *AdminServer) backend(b Backend) *adminv1.Backend {
	return backendProto(b, s.r.InFlight(b.ID))
}

// ErrInvalidArgument refuses a malformed admin call; the refusal's own message
// names the field. The server's error table maps it to InvalidArgument.
var ErrInvalidArgument = errors.New("invalid argument")

// invalidError is a malformed call: it maps like ErrInvalidArgument and reads
// as its own message.
func invalidError(msg string) error { return refusal.New(ErrInvalidArgument, msg) }

func invalidf(format string, args ...any) error { return invalidError(fmt.Sprintf(format, args...)) }

func validID(id int64) error {
	if id <= 0 {
		return invalidError("id must be a positive integer")
	}
	return nil
}

func validName(field, v string) (string, error) {
	v = strings.TrimSpace(v)
	switch {
	case v == "":
		return "", invalidf("%s is required", field)
	case len(v) > maxNameLen:
		return "", invalidf("%s must be at most %d bytes", field, maxNameLen)
	}
	return v, nil
}

// validURL checks a backend URL (absolute http or https with a host, no query
// or fragment) and drops a trailing slash. Its messages never echo the URL,
// which may carry credentials.
func validURL(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Hostname() == "" {
		return "", invalidError("url must be an absolute http:// or https:// URL with a host")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", invalidError("url must not have a query or fragment")
	}
	return strings.TrimRight(raw, "/"), nil
}

func validSettings(maxConcurrent int, gpuMemoryGB float64, nodeID int64, gpuIndices []int32) error {
	switch {
	case maxConcurrent < 1:
		return invalidError("max_concurrent must be at least 1")
	case gpuMemoryGB < 0:
		return invalidError("gpu_memory_gb must not be negative")
	case nodeID < 0:
		return invalidError("node_id must not be negative")
	}
	for _, i := range gpuIndices {
		if i < 0 {
			return invalidError("gpu_indices must not be negative")
		}
	}
	return nil
}

// secretDigest is the hex SHA-256 of an agent secret; empty for none.
func secretDigest(secret string) string {
	if secret == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}
