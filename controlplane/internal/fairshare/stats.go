package fairshare

import (
	"math"
	"slices"
)

// UserStats is one user's fair-share state, for the admin queue view.
type UserStats struct {
	// User is the principal.
	User int64
	// Weight is the configured weight.
	Weight int
	// Penalty is the usage-window factor applied to the weight, in (0, 1].
	Penalty float64
	// EffectiveWeight is Weight times Penalty: the user's share of each round.
	EffectiveWeight float64
	// Deficit is the user's credit in tokens as of the current round (negative:
	// debt).
	Deficit int64
	// BurstCredits is the credit an idle user would bring into the queue now.
	BurstCredits int64
	// RecentTokens is the usage charged in the fairness window.
	RecentTokens int64
	// Queued is the number of queued requests, QueuedTokens their estimated cost.
	Queued       int
	QueuedTokens int64
	// InFlight is the number of dispatched requests not yet settled.
	InFlight int
}

// Stats returns the state of every user the pool knows, ordered by user. O(users).
func (p *Pool) Stats() []UserStats {
	p.tick()
	out := make([]UserStats, 0, len(p.users))
	for _, u := range p.users {
		f := p.win.factor(u, p.prm)
		d := u.deficit
		if u.active {
			d += float64(p.round-u.base) * u.q
		}
		out = append(out, UserStats{
			User:            u.id,
			Weight:          u.weight,
			Penalty:         f,
			EffectiveWeight: float64(u.weight) * f,
			Deficit:         int64(math.Round(d)),
			BurstCredits:    int64(p.burst.credits(u, p.prm)),
			RecentTokens:    max(u.winTotal, 0),
			Queued:          u.queued,
			QueuedTokens:    u.queuedCost,
			InFlight:        u.inflight,
		})
	}
	slices.SortFunc(out, func(a, b UserStats) int {
		switch {
		case a.User < b.User:
			return -1
		case a.User > b.User:
			return 1
		}
		return 0
	})
	return out
}
