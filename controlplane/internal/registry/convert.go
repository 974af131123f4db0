package registry

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
	adminv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/admin/v1"
)

// backendProto converts a backend with its requests in flight.
func backendProto(b Backend, inFlight int) *adminv1.Backend {
	return &adminv1.Backend{
		Id:                  b.ID,
		Name:                b.Name,
		Url:                 b.URL,
		Engine:              string(b.Engine),
		Status:              string(b.Status),
		MaxConcurrent:       int32(b.MaxConcurrent),
		CurrentConcurrent:   int32(inFlight),
		GpuMemoryGb:         b.GPUMemoryGB,
		GpuType:             b.GPUType,
		NodeId:              b.NodeID,
		NodeName:            b.NodeName,
		GpuIndices:          int32s(b.GPUIndices),
		Version:             b.Version,
		Priority:            int32(b.Priority),
		LastHealthCheck:     timestamp(b.LastHealthCheck),
		LastSuccess:         timestamp(b.LastSuccess),
		ConsecutiveFailures: int32(b.ConsecutiveFailures),
		LastError:           b.LastError,
		Simulated:           b.Simulated,
		Models:              append([]string(nil), b.Models...),
		CreatedAt:           timestamp(b.CreatedAt),
	}
}

// modelProto converts a model; the context length the gateway uses is
// bounded by contextCap.
func modelProto(m Model, contextCap int64) *adminv1.Model {
	return &adminv1.Model{
		Id:              m.ID,
		BackendId:       m.BackendID,
		BackendName:     m.BackendName,
		Name:            m.Name,
		Family:          m.Family,
		ContextLength:   min(m.ContextLength, contextCap),
		ModelMaxContext: m.ContextLength,
		Capabilities:    append([]string(nil), m.Capabilities...),
		Loaded:          m.Loaded,
		ParameterSize:   m.ParameterSize,
		Quantization:    m.Quantization,
		SizeBytes:       m.SizeBytes,
		EmbeddingLength: m.EmbeddingLength,
	}
}

// nodeProto converts a node; the agent secret's digest never leaves.
func nodeProto(n store.Node) *adminv1.Node {
	return &adminv1.Node{
		Id:             n.ID,
		Name:           n.Name,
		Hostname:       n.Hostname,
		Status:         n.Status,
		AgentSecretSet: n.AgentSecretSHA256 != "",
		GpuCount:       int32(n.GPUCount),
		DriverVersion:  n.DriverVersion,
		CudaVersion:    n.CUDAVersion,
		AgentVersion:   n.AgentVersion,
		LastSeen:       timestamp(deref(n.LastSeen)),
		CreatedAt:      timestamp(n.CreatedAt),
	}
}

// timestamp converts a time; the zero time becomes unset.
func timestamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// deref returns the time a pointer holds, or the zero time.
func deref(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

func int32s(v []int) []int32 {
	if v == nil {
		return nil
	}
	out := make([]int32, len(v))
	for i, x := range v {
		out[i] = int32(x)
	}
	return out
}

func ints(v []int32) []int {
	out := make([]int, len(v))
	for i, x := range v {
		out[i] = int(x)
	}
	return out
}
