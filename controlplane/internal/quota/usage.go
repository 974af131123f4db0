package quota

import (
	"cmp"
	"slices"
	"time"
)

// Record is the persistent part of a user's usage: one row of the quotas table.
type Record struct {
	UserID int64
	// TokensUsed is the tokens charged in the current period.
	TokensUsed int64
	// LifetimeTokensUsed is every token ever charged.
	LifetimeTokensUsed int64
	// PeriodStart is when the current period began.
	PeriodStart time.Time
	// PeriodDays is the period's length in days; 0 means the manager's default
	// (and is what a period shorter than a day is saved as).
	PeriodDays int
}

// UserUsage is a user's usage as the admin views show it.
type UserUsage struct {
	Record
	// Budget is the token budget last seen for the user; 0 for unlimited.
	Budget int64
	// Reserved is the tokens held by the user's unsettled requests.
	Reserved int64
	// PeriodEnd is when the current period ends and usage goes back to zero.
	PeriodEnd time.Time
	// RPMLimit is the requests-per-minute limit last seen; 0 for unlimited.
	RPMLimit int
	// RequestsInWindow is the requests counted in the last minute.
	RequestsInWindow int
	// InFlight is the requests admitted or queued and not yet settled.
	InFlight int
}

// Usage returns the user's usage now; a user the manager has not seen has none.
func (m *Manager) Usage(userID int64) UserUsage {
	sh := m.shard(userID)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	now := m.now()
	u := sh.users[userID]
	if u == nil {
		start := m.timeAt(now)
		return UserUsage{
			Record:    Record{UserID: userID, PeriodStart: start, PeriodDays: days(m.opts.Period)},
			PeriodEnd: start.Add(m.opts.Period),
		}
	}
	return m.view(u, now)
}

// All returns the usage of every user the manager knows, by user id.
func (m *Manager) All() []UserUsage {
	var out []UserUsage
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		now := m.now()
		for _, u := range sh.users {
			out = append(out, m.view(u, now))
		}
		sh.mu.Unlock()
	}
	slices.SortFunc(out, func(a, b UserUsage) int { return cmp.Compare(a.UserID, b.UserID) })
	return out
}

// view snapshots u; the caller holds its shard's lock.
func (m *Manager) view(u *user, now int64) UserUsage {
	u.roll(now)
	return UserUsage{
		Record:           m.record(u),
		Budget:           u.budget,
		Reserved:         u.reserved,
		PeriodEnd:        m.timeAt(u.periodStart + int64(u.period)),
		RPMLimit:         u.rpmLimit,
		RequestsInWindow: u.rpm.count(now),
		InFlight:         u.inFlight,
	}
}

func (m *Manager) record(u *user) Record {
	return Record{
		UserID:             u.id,
		TokensUsed:         u.used,
		LifetimeTokensUsed: u.lifetime,
		PeriodStart:        m.timeAt(u.periodStart),
		PeriodDays:         days(u.period),
	}
}

// days is a period in whole days, 0 when shorter than a day.
func days(d time.Duration) int { return int(d / (24 * time.Hour)) }
