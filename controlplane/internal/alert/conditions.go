package alert

import (
	"fmt"
	"sort"
	"time"

	"github.com/mindrouter/mindrouter/controlplane/internal/admission"
	"github.com/mindrouter/mindrouter/controlplane/internal/registry"
	"github.com/mindrouter/mindrouter/controlplane/internal/store"
	adminv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/admin/v1"
)

// The alert kinds.
const (
	KindBackendUnhealthy  = "backend_unhealthy"
	KindNodeOffline       = "node_offline"
	KindNodeSilent        = "node_silent"
	KindCircuitOpen       = "circuit_open"
	KindGPUTemperature    = "gpu_temperature"
	KindAuditSpoolFilling = "audit_spool_filling"
)

// Kinds lists every kind, for the metrics and the API's validation.
var Kinds = []string{KindBackendUnhealthy, KindNodeOffline, KindNodeSilent, KindCircuitOpen, KindGPUTemperature, KindAuditSpoolFilling}

// The severities.
const (
	Warning  = "warning"
	Critical = "critical"
)

// Thresholds configure when a condition holds.
type Thresholds struct {
	// NodeSilentAfter: an online node whose agent has not been heard for this
	// long is silent (default 3m; the agent's last_seen is written every minute).
	NodeSilentAfter time.Duration
	// GPUTemperatureC: a GPU at or above it is too hot (default 85).
	GPUTemperatureC float64
	// SpoolFillRatio: a bounded audit spool at or above this share of its limit
	// is filling (default 0.8).
	SpoolFillRatio float64
}

func (t Thresholds) withDefaults() Thresholds {
	if t.NodeSilentAfter <= 0 {
		t.NodeSilentAfter = 3 * time.Minute
	}
	if t.GPUTemperatureC <= 0 {
		t.GPUTemperatureC = 85
	}
	if t.SpoolFillRatio <= 0 || t.SpoolFillRatio > 1 {
		t.SpoolFillRatio = 0.8
	}
	return t
}

// Snapshot is what one evaluation round sees.
type Snapshot struct {
	Backends []registry.Backend
	Nodes    []store.Node
	GPUs     []*adminv1.GPU
	Spools   []admission.SpoolFill
}

// Condition is one alert condition that holds now.
type Condition struct {
	Kind     string
	Subject  string
	Severity string
	Message  string
}

func (c Condition) key() string { return c.Kind + "\x00" + c.Subject }

// Conditions returns the conditions that hold in snap at now, sorted by kind and
// subject. It is a pure function: the Evaluator's rounds and its tests use it alike.
func Conditions(snap Snapshot, now time.Time, th Thresholds) []Condition {
	th = th.withDefaults()
	var out []Condition
	for _, b := range snap.Backends {
		subject := "backend/" + b.Name
		if b.Status == registry.StatusUnhealthy {
			msg := fmt.Sprintf("backend %s (%s) is unhealthy after %d failed health checks", b.Name, b.URL, b.ConsecutiveFailures)
			if b.LastError != "" {
				msg += ": " + b.LastError
			}
			out = append(out, Condition{KindBackendUnhealthy, subject, Critical, msg})
		}
		if b.Circuit == registry.CircuitOpen && b.Status != registry.StatusDisabled {
			out = append(out, Condition{KindCircuitOpen, subject, Warning,
				fmt.Sprintf("the circuit breaker of backend %s is open after %d failed requests", b.Name, b.LiveFailures)})
		}
	}
	for _, n := range snap.Nodes {
		subject := "node/" + n.Name
		switch {
		case n.Status == store.NodeOffline:
			out = append(out, Condition{KindNodeOffline, subject, Critical,
				fmt.Sprintf("node %s is offline: its agent's telemetry stream ended%s", n.Name, since(n.LastSeen, now))})
		case n.Status == store.NodeOnline && n.LastSeen != nil && now.Sub(*n.LastSeen) >= th.NodeSilentAfter:
			out = append(out, Condition{KindNodeSilent, subject, Warning,
				fmt.Sprintf("node %s sent no telemetry%s", n.Name, since(n.LastSeen, now))})
		}
	}
	for _, g := range snap.GPUs {
		t := float64(g.GetSample().GetTemperatureC())
		if t >= th.GPUTemperatureC {
			out = append(out, Condition{KindGPUTemperature, fmt.Sprintf("gpu/%s/%d", g.GetNodeName(), g.GetSample().GetIndex()), Warning,
				fmt.Sprintf("GPU %d of node %s is at %.0f °C (threshold %.0f °C)", g.GetSample().GetIndex(), g.GetNodeName(), t, th.GPUTemperatureC)})
		}
	}
	for _, s := range snap.Spools {
		if s.MaxBytes > 0 && float64(s.Bytes) >= th.SpoolFillRatio*float64(s.MaxBytes) {
			out = append(out, Condition{KindAuditSpoolFilling, "replica/" + s.Replica, Critical,
				fmt.Sprintf("the audit spool of data plane %s holds %d of %d bytes (%.0f %%): the control plane is not taking its records",
					s.Replica, s.Bytes, s.MaxBytes, 100*float64(s.Bytes)/float64(s.MaxBytes))})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key() < out[j].key() })
	return out
}

func since(t *time.Time, now time.Time) string {
	if t == nil {
		return ""
	}
	return fmt.Sprintf(" (last heard %s ago)", now.Sub(*t).Truncate(time.Second))
}
