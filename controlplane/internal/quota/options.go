package quota

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of Options.
const (
	// DefaultPeriod is the length of a budget period (the reference's
	// budget_period_days = 30).
	DefaultPeriod = 30 * 24 * time.Hour
	// DefaultMaxConcurrentPerUser caps the requests one user may have admitted or
	// queued at once. It counts queued requests too, so it bounds how much of the
	// queues one user can fill; batch users who need more get a higher setting.
	DefaultMaxConcurrentPerUser = 32
	// DefaultFlushInterval is how often Run writes changed usage to the store.
	DefaultFlushInterval = 10 * time.Second
	// MaxRPMLimit is the largest requests-per-minute limit kept exactly; larger
	// limits are enforced as MaxRPMLimit (the log costs 8 bytes per request in
	// the window).
	MaxRPMLimit = 100_000
)

const (
	// rpmWindow is the length of the requests-per-minute window.
	rpmWindow = time.Minute
	// busyRetryAfter is the Retry-After of refusals that end when one of the
	// user's own requests ends (concurrency cap, budget held by reservations).
	busyRetryAfter = time.Second
	// maxQuotaRetryAfter caps the Retry-After of an exhausted budget, whose
	// period may end weeks later.
	maxQuotaRetryAfter = time.Hour
	// flushBatch is the most records one SaveUsage call receives.
	flushBatch = 500
	// finalFlushTimeout bounds the flush at shutdown.
	finalFlushTimeout = 5 * time.Second
)

// Options configures a Manager. The zero value is usable.
type Options struct {
	// Period is the length of a user's rolling budget period when the store holds
	// none for the user; DefaultPeriod when zero.
	Period time.Duration
	// MaxConcurrentPerUser caps the requests a user holds reservations for
	// (queued or running); DefaultMaxConcurrentPerUser when zero, unlimited when
	// negative.
	MaxConcurrentPerUser int
	// Store persists usage; nil keeps it in memory only.
	Store UsageStore
	// FlushInterval is how often Run writes changed usage; DefaultFlushInterval
	// when zero.
	FlushInterval time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Registerer receives the metrics; nil registers none.
	Registerer prometheus.Registerer
	// Logger receives warnings; discarded when nil.
	Logger *slog.Logger
}

func (o Options) withDefaults() (Options, error) {
	switch {
	case o.Period < 0:
		return o, fmt.Errorf("quota: period %v must not be negative", o.Period)
	case o.FlushInterval < 0:
		return o, fmt.Errorf("quota: flush interval %v must not be negative", o.FlushInterval)
	}
	if o.Period == 0 {
		o.Period = DefaultPeriod
	}
	if o.FlushInterval == 0 {
		o.FlushInterval = DefaultFlushInterval
	}
	if o.MaxConcurrentPerUser == 0 {
		o.MaxConcurrentPerUser = DefaultMaxConcurrentPerUser
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}
