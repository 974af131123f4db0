package cpclient

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	releases  *prometheus.CounterVec
	sessions  *prometheus.CounterVec
	connected prometheus.Gauge
	// releaseBatches counts Releases messages sent over the session.
	releaseBatches prometheus.Counter
	// admitRetries counts admissions sent again because no control plane
	// answered (a failover).
	admitRetries prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, pending func() int) (*metrics, error) {
	m := &metrics{
		releases: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mindrouter_dp_cp_releases_total",
			Help: "Lease releases by result: ok, deferred (queued for retry), retried_ok, refused, dropped; those sent on the session stream count when acknowledged.",
		}, []string{"result"}),
		sessions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mindrouter_dp_cp_session_events_total",
			Help: "Session stream events: connected, broken, catalog_changed, credential_revoked.",
		}, []string{"event"}),
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mindrouter_dp_cp_session_connected",
			Help: "1 while the session stream to the control plane is established.",
		}),
		releaseBatches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mindrouter_dp_cp_release_batches_total",
			Help: "Releases messages sent over the session stream (each carries one or more releases).",
		}),
		admitRetries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mindrouter_dp_cp_admit_retries_total",
			Help: "Admissions sent again because no control plane answered (a control-plane failover in progress).",
		}),
	}
	if reg == nil {
		return m, nil
	}
	pendingGauge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "mindrouter_dp_cp_releases_pending",
		Help: "Releases waiting in the background retry queue.",
	}, func() float64 { return float64(pending()) })
	for _, c := range []prometheus.Collector{m.releases, m.sessions, m.connected, m.releaseBatches, m.admitRetries, pendingGauge} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register control-plane client metrics: %w", err)
		}
	}
	return m, nil
}
