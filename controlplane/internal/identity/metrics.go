package identity

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Rejection reasons reported in mindrouter_identity_rejections_total.
const (
	reasonMalformed    = "malformed"
	reasonUnknown      = "unknown"
	reasonHashMismatch = "hash_mismatch"
	reasonRevoked      = "revoked"
	reasonExpired      = "expired"
	reasonUserInactive = "user_inactive"
)

// metrics are the package's Prometheus collectors, curried up front so that the
// verification path does no label lookups.
type metrics struct {
	cacheHit, cacheMiss, cacheNegativeHit prometheus.Counter
	refreshOK, refreshFailed              prometheus.Counter
	argon2                                prometheus.Counter
	rejections                            map[string]prometheus.Counter
	revocationDrops                       prometheus.Counter
	staleServed, staleTooOld              prometheus.Counter
}

// newMetrics creates the collectors and registers them on reg when it is not nil.
// A registration failure (a second Service on one registry) is logged, not fatal:
// the collectors still count, they are just not exported.
func newMetrics(reg prometheus.Registerer, log *slog.Logger, cacheSize func() (int, int), unreachableFor func() time.Duration) *metrics {
	lookups := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mindrouter_identity_verify_cache_total",
		Help: "API key verifications by cache outcome: hit, miss or negative_hit (a recently unknown key).",
	}, []string{"result"})
	argon := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "mindrouter_identity_argon2_verifications_total",
		Help: "Argon2id verifications of API keys (one per cache miss of a known key).",
	})
	refreshes := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mindrouter_identity_verify_cache_refreshes_total",
		Help: "Background re-reads of a cached key's row shortly before its entry expires, by result: ok or failed.",
	}, []string{"result"})
	rejections := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mindrouter_identity_rejections_total",
		Help: "API keys refused, by reason.",
	}, []string{"reason"})
	drops := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "mindrouter_identity_revocation_notifications_dropped_total",
		Help: "Revocation notifications not delivered because a subscriber's buffer was full.",
	})
	entries := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "mindrouter_identity_verify_cache_entries",
		Help: "Verified API keys currently cached.",
	}, func() float64 { n, _ := cacheSize(); return float64(n) })
	stale := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mindrouter_identity_stale_verifications_total",
		Help: "Verifications of expired cache entries while the database was unreachable, by result: " +
			"served (the key worked) or too_old (read longer than max-stale ago; the request got database_unavailable).",
	}, []string{"result"})
	down := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "mindrouter_identity_database_unreachable_seconds",
		Help: "How long reads of API key rows have been failing to reach the database; 0 once one succeeds.",
	}, func() float64 { return unreachableFor().Seconds() })
	m := &metrics{
		cacheHit:         lookups.WithLabelValues("hit"),
		cacheMiss:        lookups.WithLabelValues("miss"),
		cacheNegativeHit: lookups.WithLabelValues("negative_hit"),
		refreshOK:        refreshes.WithLabelValues("ok"),
		refreshFailed:    refreshes.WithLabelValues("failed"),
		argon2:           argon,
		rejections:       map[string]prometheus.Counter{},
		revocationDrops:  drops,
		staleServed:      stale.WithLabelValues("served"),
		staleTooOld:      stale.WithLabelValues("too_old"),
	}
	for _, r := range []string{reasonMalformed, reasonUnknown, reasonHashMismatch, reasonRevoked, reasonExpired, reasonUserInactive} {
		m.rejections[r] = rejections.WithLabelValues(r)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{lookups, refreshes, argon, rejections, drops, entries, stale, down} {
			if err := reg.Register(c); err != nil {
				log.Warn("register identity metric", slog.Any("error", err))
			}
		}
	}
	return m
}
