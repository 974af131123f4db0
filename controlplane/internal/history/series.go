package history

import (
	"time"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
	nodeagentv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/nodeagent/v1"
)

// The series' metric names.
const (
	// Per GPU.
	GPUUtilization = "utilization_percent"
	GPUMemoryUtil  = "memory_utilization_percent"
	GPUMemoryUsed  = "memory_used_bytes"
	GPUPower       = "power_watts"
	GPUTemperature = "temperature_celsius"
	GPUClockSM     = "clock_sm_mhz"
	GPUClockMemory = "clock_memory_mhz"
	// Per node.
	NodeGPUPower = "gpu_power_watts"
	NodeCPUPower = "cpu_power_watts"
	// Per backend, one point per settled request.
	BackendRequests         = "requests"
	BackendPromptTokens     = "prompt_tokens"
	BackendCompletionTokens = "completion_tokens"
	BackendTTFT             = "ttft_seconds"
	BackendQueueWait        = "queue_wait_seconds"
)

// Metrics lists every metric of each scope, for validating API parameters.
var Metrics = map[string][]string{
	store.ScopeGPU:     {GPUUtilization, GPUMemoryUtil, GPUMemoryUsed, GPUPower, GPUTemperature, GPUClockSM, GPUClockMemory},
	store.ScopeNode:    {NodeGPUPower, NodeCPUPower},
	store.ScopeBackend: {BackendRequests, BackendPromptTokens, BackendCompletionTokens, BackendTTFT, BackendQueueWait},
}

// NodePoints turns one node sample into raw points at t: seven series per GPU, the
// node's summed GPU power, and its CPU package power when the agent measured it.
func NodePoints(nodeID int64, t time.Time, s *nodeagentv1.NodeSample) []store.MetricPoint {
	gpus := s.GetGpus()
	out := make([]store.MetricPoint, 0, 7*len(gpus)+2)
	var total float64
	for _, g := range gpus {
		key := func(m string) store.SeriesKey {
			return store.SeriesKey{Scope: store.ScopeGPU, NodeID: nodeID, GPUIndex: int(g.GetIndex()), Metric: m}
		}
		watts := float64(g.GetPowerDrawMilliwatts()) / 1000
		total += watts
		out = append(out,
			store.Sample(key(GPUUtilization), t, float64(g.GetUtilizationGpuPercent())),
			store.Sample(key(GPUMemoryUtil), t, float64(g.GetUtilizationMemoryPercent())),
			store.Sample(key(GPUMemoryUsed), t, float64(g.GetMemoryUsedBytes())),
			store.Sample(key(GPUPower), t, watts),
			store.Sample(key(GPUTemperature), t, float64(g.GetTemperatureC())),
			store.Sample(key(GPUClockSM), t, float64(g.GetClockSmMhz())),
			store.Sample(key(GPUClockMemory), t, float64(g.GetClockMemoryMhz())),
		)
	}
	node := func(m string) store.SeriesKey {
		return store.SeriesKey{Scope: store.ScopeNode, NodeID: nodeID, Metric: m}
	}
	if len(gpus) > 0 {
		out = append(out, store.Sample(node(NodeGPUPower), t, total))
	}
	if p := s.GetHostPower(); p != nil && p.GetCpuMilliwatts() > 0 {
		out = append(out, store.Sample(node(NodeCPUPower), t, float64(p.GetCpuMilliwatts())/1000))
	}
	return out
}
