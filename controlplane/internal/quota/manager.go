package quota

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// shardCount spreads users over this many locks.
const shardCount = 64

// shard is a lock and the users under it, padded to its own cache line.
type shard struct {
	mu    sync.Mutex
	users map[int64]*user
	_     [48]byte
}

// Manager enforces token budgets, request rates and concurrency per user. It
// is safe for concurrent use.
type Manager struct {
	opts Options
	// epoch anchors the manager's clock: times are kept as nanoseconds since it.
	epoch    time.Time
	shards   [shardCount]shard
	reserved atomic.Int64
	charged  atomic.Int64
	metrics  *metrics
}

// New returns a Manager with no usage; call Load to restore usage from the store
// before serving.
func New(opts Options) (*Manager, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	m := &Manager{opts: opts, epoch: opts.Now()}
	for i := range m.shards {
		m.shards[i].users = make(map[int64]*user)
	}
	if m.metrics, err = newMetrics(opts.Registerer, m); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *Manager) shard(userID int64) *shard {
	// Fibonacci hashing: consecutive ids land on different shards.
	return &m.shards[(uint64(userID)*0x9E3779B97F4A7C15)>>(64-6)]
}

// now is the manager's clock in nanoseconds since epoch.
func (m *Manager) now() int64 { return int64(m.opts.Now().Sub(m.epoch)) }

func (m *Manager) timeAt(ns int64) time.Time {
	return m.epoch.Add(time.Duration(ns)).Round(0)
}

// Reserve holds r.Tokens of the user's budget, counts the request against the
// user's (and key's) rate and the user's concurrency cap, or refuses with a
// *LimitError wrapping ErrQuotaExhausted, ErrRateLimited or
// ErrConcurrencyLimited. A refusal changes nothing. Every successful Reserve must
// be followed by exactly one Settle with the same request id. An attempt whose
// request id the user holds or settled among their last few requests is a retry
// of the same client request: it reserves tokens and counts against the
// concurrency cap, but not against the rate limits again.
func (m *Manager) Reserve(_ context.Context, p Account, r Reservation) error {
	tokens := max(r.Tokens, 0)
	keyLimit := 0
	if p.APIKeyID != 0 {
		keyLimit = min(max(p.KeyRPMLimit, 0), MaxRPMLimit)
	}
	userLimit := min(max(p.RPMLimit, 0), MaxRPMLimit)

	sh := m.shard(p.UserID)
	sh.mu.Lock()
	now := m.now()
	u := sh.users[p.UserID]
	if u == nil {
		u = newUser(p.UserID, now, m.opts.Period)
		sh.users[p.UserID] = u
	}
	u.roll(now)
	u.budget, u.rpmLimit = max(p.TokenBudget, 0), userLimit
	h, held := u.held[r.RequestID]
	// A retry attempt of a request is not a new request for the rate limits.
	countRate := !u.retry(r.RequestID, held)
	var kw *keyWindow
	if countRate && keyLimit > 0 {
		kw = u.key(p.APIKeyID)
		kw.limit = keyLimit
	}
	if ref, ok := m.check(u, kw, tokens, countRate, now); !ok {
		sh.mu.Unlock()
		return m.refuse(ref)
	}
	if countRate {
		if userLimit > 0 {
			u.rpm.add(now, userLimit)
		}
		if kw != nil {
			kw.add(now, keyLimit)
		}
	}
	h.tokens += tokens
	h.n++
	u.held[r.RequestID] = h
	u.reserved += tokens
	u.inFlight++
	sh.mu.Unlock()
	m.reserved.Add(tokens)
	return nil
}

// check decides a reservation without changing anything but window sizes.
func (m *Manager) check(u *user, kw *keyWindow, tokens int64, countRate bool, now int64) (refusal, bool) {
	if u.budget > 0 && u.used+u.reserved+tokens > u.budget {
		r := refusal{reason: reasonQuota, limit: u.budget, used: u.used, reserved: u.reserved, tokens: tokens}
		if u.used+tokens <= u.budget {
			// Only in-flight reservations are in the way; they end soon.
			r.after = busyRetryAfter
		} else {
			r.resetIn = time.Duration(u.periodStart + int64(u.period) - now)
			r.after = min(r.resetIn, maxQuotaRetryAfter)
		}
		return r, false
	}
	if countRate && u.rpmLimit > 0 {
		if ok, wait := u.rpm.allow(now, u.rpmLimit); !ok {
			return refusal{reason: reasonRate, limit: int64(u.rpmLimit), current: int64(u.rpm.count(now)),
				after: time.Duration(wait)}, false
		}
	}
	if kw != nil {
		if ok, wait := kw.allow(now, kw.limit); !ok {
			return refusal{reason: reasonKeyRate, limit: int64(kw.limit), current: int64(kw.count(now)),
				after: time.Duration(wait)}, false
		}
	}
	if c := m.opts.MaxConcurrentPerUser; c > 0 && u.inFlight >= c {
		return refusal{reason: reasonConcurrency, limit: int64(c), current: int64(u.inFlight),
			after: busyRetryAfter}, false
	}
	return refusal{}, true
}

// Settle ends a reservation: it is released and the usage charged (see charge).
// A settlement for a request id that holds nothing is ignored, so a repeated
// Settle counts nothing twice.
func (m *Manager) Settle(p Account, s Settlement) {
	if s.Adopted {
		m.settleAdopted(p, s)
		return
	}
	sh := m.shard(p.UserID)
	sh.mu.Lock()
	u := sh.users[p.UserID]
	var h hold
	var ok bool
	if u != nil {
		h, ok = u.held[s.RequestID]
	}
	if !ok {
		sh.mu.Unlock()
		m.opts.Logger.Warn("quota: settlement without a reservation",
			slog.String("request_id", s.RequestID), slog.Int64("user_id", p.UserID))
		return
	}
	released := h.tokens
	if h.n > 1 {
		released = min(max(s.Tokens, 0), h.tokens)
		h.tokens -= released
		h.n--
		u.held[s.RequestID] = h
	} else {
		delete(u.held, s.RequestID)
	}
	cost := charge(s, released)
	u.reserved -= released
	u.inFlight--
	u.charge(m.now(), cost, s.RequestID)
	sh.mu.Unlock()
	m.reserved.Add(-released)
	m.charged.Add(cost)
}

// settleAdopted charges a request this process never reserved for: a lease
// adopted after a control-plane restart, or a Release that arrived for a lease
// this process never knew. Nothing is held, so nothing is released and the
// concurrency count is untouched; the reported usage is charged. Admission
// settles each lease once (by lease id), and attempts of one request share its
// request id, so every adopted settlement is charged. A lost adopted lease
// has no reservation to charge, so it costs nothing: the usage is unknown and
// the tokens were reserved by the process that died.
func (m *Manager) settleAdopted(p Account, s Settlement) {
	if p.UserID == 0 {
		return
	}
	cost := charge(s, 0)
	sh := m.shard(p.UserID)
	sh.mu.Lock()
	u := sh.users[p.UserID]
	if u == nil {
		u = newUser(p.UserID, m.now(), m.opts.Period)
		sh.users[p.UserID] = u
	}
	u.charge(m.now(), cost, s.RequestID)
	sh.mu.Unlock()
	m.charged.Add(cost)
}

// charge is what a settlement costs: nothing when the request never got a slot;
// the whole reservation when the lease was lost (usage unknown) or a successful
// request reported no usage at all (the reference charges its estimates then);
// otherwise the reported prompt and completion tokens, even when they exceed the
// reservation.
func charge(s Settlement, reserved int64) int64 {
	switch {
	case !s.Granted:
		return 0
	case s.Lost:
		return reserved
	}
	n := max(s.PromptTokens, 0) + max(s.CompletionTokens, 0)
	if n == 0 && s.Succeeded {
		return reserved
	}
	return n
}
