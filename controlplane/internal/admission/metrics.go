package admission

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

// latencyBuckets span a fast embedding to a long generation.
var latencyBuckets = []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}

type metrics struct {
	admissions *prometheus.CounterVec
	// granted is admissions' "granted" child, resolved once.
	granted   prometheus.Counter
	leasesVec *prometheus.GaugeVec
	wait      prometheus.Histogram
	sessions  prometheus.Gauge
	reclaimed prometheus.Counter
	expired   prometheus.Counter
	adopted   prometheus.Counter
	orphans   prometheus.Counter
	releases  *prometheus.CounterVec
	tokens    *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	ttft      *prometheus.HistogramVec

	// gauges caches the per-backend in-flight gauge (gaugeKey → prometheus.Gauge).
	gauges sync.Map
}

// gaugeKey names a backend's in-flight gauge: its id and the name it is shown by.
type gaugeKey struct {
	id   int64
	name string
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		admissions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mindrouter_admissions_total",
			Help: "Admissions by result (granted, queue_full, queue_timeout, cancelled, context_exceeded, no_backend, denied, invalid, refused), unary calls and session admissions alike.",
		}, []string{"result"}),
		leasesVec: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mindrouter_leases_in_flight",
			Help: "Leases held, per backend.",
		}, []string{"backend"}),
		wait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "mindrouter_admit_wait_seconds",
			Help:    "Time granted Admits waited for a backend slot (0 when one was free).",
			Buckets: []float64{.001, .005, .025, .1, .25, 1, 2.5, 5, 10, 30, 60, 150},
		}),
		sessions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mindrouter_sessions",
			Help: "Open data-plane replica sessions.",
		}),
		reclaimed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mindrouter_leases_reclaimed_total",
			Help: "Leases freed because their replica's session stayed gone past the grace period.",
		}),
		expired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mindrouter_leases_expired_total",
			Help: "Leases freed because they were not renewed before their expiry.",
		}),
		adopted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mindrouter_leases_adopted_total",
			Help: "Leases granted before a control-plane restart and adopted from a replica's heartbeat.",
		}),
		orphans: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mindrouter_releases_without_lease_total",
			Help: "Releases settled from the lease identity they carried because the lease was granted before a restart.",
		}),
		releases: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mindrouter_releases_total",
			Help: "Release calls by outcome (already_settled for repeats).",
		}, []string{"outcome"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mindrouter_tokens_total",
			Help: "Tokens reported at release, by model and type (prompt, completion).",
		}, []string{"model", "type"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mindrouter_request_duration_seconds",
			Help:    "Time from dispatch to the end of the answer, as the data plane reported it, by model.",
			Buckets: latencyBuckets,
		}, []string{"model"}),
		ttft: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mindrouter_ttft_seconds",
			Help:    "Time from dispatch to the first byte from the backend, by model.",
			Buckets: latencyBuckets,
		}, []string{"model"}),
	}
	m.granted = m.admissions.WithLabelValues("granted")
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.admissions, m.leasesVec, m.wait, m.sessions, m.reclaimed,
		m.expired, m.adopted, m.orphans, m.releases, m.tokens, m.duration, m.ttft} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// admitted counts one admission by its result; a grant, the common case,
// without a label lookup.
func (m *metrics) admitted(err error) {
	if err == nil {
		m.granted.Inc()
		return
	}
	m.admissions.WithLabelValues(admitResult(err)).Inc()
}

// inFlight returns the in-flight gauge of a candidate's backend.
func (m *metrics) inFlight(c Candidate) prometheus.Gauge {
	k := gaugeKey{c.BackendID, c.BackendName}
	if g, ok := m.gauges.Load(k); ok {
		return g.(prometheus.Gauge)
	}
	name := c.BackendName
	if name == "" {
		name = "backend-" + strconv.FormatInt(c.BackendID, 10)
	}
	g, _ := m.gauges.LoadOrStore(k, m.leasesVec.WithLabelValues(name))
	return g.(prometheus.Gauge)
}

func (m *metrics) observeRelease(l *lease, outcome controlplanev1.Outcome, usage *controlplanev1.Usage, ttft, duration time.Duration) {
	m.releases.WithLabelValues(outcomeLabel(outcome)).Inc()
	model := l.cand.Model
	if n := usage.GetPromptTokens(); n > 0 {
		m.tokens.WithLabelValues(model, "prompt").Add(float64(n))
	}
	if n := usage.GetCompletionTokens(); n > 0 {
		m.tokens.WithLabelValues(model, "completion").Add(float64(n))
	}
	if duration > 0 {
		m.duration.WithLabelValues(model).Observe(duration.Seconds())
	}
	if ttft > 0 {
		m.ttft.WithLabelValues(model).Observe(ttft.Seconds())
	}
}

func outcomeLabel(o controlplanev1.Outcome) string {
	switch o {
	case controlplanev1.Outcome_OUTCOME_SUCCESS:
		return "success"
	case controlplanev1.Outcome_OUTCOME_CLIENT_CANCELLED:
		return "client_cancelled"
	case controlplanev1.Outcome_OUTCOME_BACKEND_ERROR:
		return "backend_error"
	case controlplanev1.Outcome_OUTCOME_REJECTED:
		return "rejected"
	}
	return "unspecified"
}
