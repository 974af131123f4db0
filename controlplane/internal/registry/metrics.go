package registry

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the registry's Prometheus series.
type metrics struct {
	up       *prometheus.GaugeVec
	probe    *prometheus.HistogramVec
	backends *prometheus.GaugeVec
	circuit  *prometheus.CounterVec
	// names are the backend names with an up series, to drop removed ones.
	names map[string]bool
}

func newMetrics(reg prometheus.Registerer) *metrics {
	return &metrics{
		up: register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mindrouter_backend_up",
			Help: "1 when the backend is healthy (routable), 0 otherwise.",
		}, []string{"backend"})),
		probe: register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mindrouter_backend_probe_seconds",
			Help:    "Duration of backend health and discovery probes.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 20},
		}, []string{"engine", "result"})),
		backends: register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mindrouter_backends",
			Help: "Backends by status.",
		}, []string{"status"})),
		circuit: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mindrouter_backend_circuit_transitions_total",
			Help: "Circuit breaker transitions caused by request outcomes, by the state entered (open or closed).",
		}, []string{"backend", "to"})),
		names: map[string]bool{},
	}
}

// observeCircuit counts a circuit transition.
func (m *metrics) observeCircuit(backend string, to CircuitState) {
	m.circuit.WithLabelValues(backend, string(to)).Inc()
}

// register registers c, or returns the collector already registered under
// the same description.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
	}
	return c
}

// observeProbe records one probe.
func (m *metrics) observeProbe(engine Engine, healthy bool, d time.Duration) {
	result := "failure"
	if healthy {
		result = "success"
	}
	m.probe.WithLabelValues(string(engine), result).Observe(d.Seconds())
}

// observeView sets the per-status and per-backend gauges; called with the
// registry's lock held.
func (m *metrics) observeView(v *view) {
	counts := map[Status]int{StatusHealthy: 0, StatusUnhealthy: 0, StatusDisabled: 0, StatusDraining: 0, StatusUnknown: 0}
	seen := make(map[string]bool, len(v.backends))
	for _, b := range v.backends {
		counts[b.Status]++
		seen[b.Name] = true
		up := 0.0
		if b.Status == StatusHealthy {
			up = 1
		}
		m.up.WithLabelValues(b.Name).Set(up)
	}
	for s, n := range counts {
		m.backends.WithLabelValues(string(s)).Set(float64(n))
	}
	for name := range m.names {
		if !seen[name] {
			m.up.DeleteLabelValues(name)
			m.circuit.DeletePartialMatch(prometheus.Labels{"backend": name})
		}
	}
	m.names = seen
}
