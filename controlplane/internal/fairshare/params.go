package fairshare

import (
	"fmt"
	"time"
)

// Params tune a Pool. Start from DefaultParams and change what you need: unlike
// most option structs, a zero field here means "off" where the field says so, not
// "default". docs/scheduler.md explains every field.
type Params struct {
	// Quantum is the credit, in tokens, that a user earns per WDRR round per unit of
	// weight (default 512). Smaller values interleave users more finely; any value
	// works because the rounds a request needs are computed, not looped.
	Quantum int64
	// MaxDebt bounds a user's negative deficit, in tokens per unit of weight
	// (default 8192). Debt comes from requests that used more than estimated and from
	// requests dispatched out of turn by the wait bonus.
	MaxDebt int64

	// BurstCredits caps the burst credits of a user, in tokens per unit of weight
	// (default 2048); 0 disables bursts. A user that joins the queue after being idle
	// spends its credits at once, so its first requests go ahead of the round robin.
	// Brand-new users start full.
	BurstCredits int64
	// BurstAccrual is how fast an idle user earns burst credits while the pool is
	// uncontended (fewer than two users queued), in tokens per second per unit of
	// weight (default 256: empty to full in 8 s).
	BurstAccrual float64
	// BurstHalfLife is the half-life of unspent burst credits while the pool is
	// contended (two or more users queued) (default 5 s): under contention credits
	// vanish within seconds and service follows weights.
	BurstHalfLife time.Duration

	// FairnessWindow is how far back recent usage counts (default 300 s), kept in 30
	// buckets; 0 disables the usage penalty.
	FairnessWindow time.Duration
	// PenaltyThreshold is the over-use ratio above which a user's quantum shrinks
	// (default 1.5). The over-use ratio is the user's share of the tokens served in
	// the window divided by its weighted fair share (its weight over the sum of the
	// weights of users present in the window); it must be at least 1.
	PenaltyThreshold float64
	// PenaltyExponent shapes the penalty (default 2): above the threshold a user's
	// quantum is multiplied by (PenaltyThreshold/ratio)^PenaltyExponent, so at twice
	// the threshold it gets a quarter of its quantum. It must be at least 1.
	PenaltyExponent float64
	// MinPenaltyFactor is the smallest factor the penalty multiplies a quantum by
	// (default 0.1), in (0, 1].
	MinPenaltyFactor float64
	// PenaltyMinTokens is the number of tokens served in the window below which no
	// penalty applies (default 8192), so that the first requests after a quiet
	// period are not judged on a handful of samples.
	PenaltyMinTokens int64

	// WaitBonusPerSecond is the credit, in tokens per second, that the request
	// waiting longest at the head of its user's queue earns (default 32); 0 disables
	// it. Once the bonus covers what the request still lacks, it is dispatched out of
	// turn (and charged in full), which bounds every wait: see docs/scheduler.md.
	WaitBonusPerSecond float64

	// CostLearningRate is how fast a user's cost ratio follows its requests
	// (default 0.25): each settled request moves the ratio this fraction of the way
	// to its real cost over its estimate. A request is charged its estimate times
	// the ratio when it is dispatched, and Settle corrects the difference, so the
	// credit held by requests in flight is close to what they will really cost
	// (docs/scheduler.md, "Charging the expected cost"). 0 keeps the ratio at 1:
	// requests are charged their full estimate until they settle.
	CostLearningRate float64

	// MaxQueuePerUser bounds the requests one user may have queued (default 64).
	MaxQueuePerUser int
	// MaxQueuePerModel bounds the requests the pool holds (default 1000).
	MaxQueuePerModel int
	// QueueTimeout is the age at which Expire removes a queued request (default
	// 150 s); 0 means Expire removes nothing.
	QueueTimeout time.Duration
}

// DefaultParams returns the defaults documented on each Params field.
func DefaultParams() Params {
	return Params{
		Quantum:            64,
		MaxDebt:            8192,
		BurstCredits:       2048,
		BurstAccrual:       256,
		BurstHalfLife:      5 * time.Second,
		FairnessWindow:     300 * time.Second,
		PenaltyThreshold:   1.5,
		PenaltyExponent:    2,
		MinPenaltyFactor:   0.1,
		PenaltyMinTokens:   8192,
		WaitBonusPerSecond: 32,
		CostLearningRate:   0.25,
		MaxQueuePerUser:    64,
		MaxQueuePerModel:   1000,
		QueueTimeout:       150 * time.Second,
	}
}

// Validate reports the first parameter out of range, wrapping ErrInvalidParams.
func (p Params) Validate() error {
	bad := func(name string, v any, want string) error {
		return fmt.Errorf("%w: %s is %v, want %s", ErrInvalidParams, name, v, want)
	}
	switch {
	case p.Quantum <= 0:
		return bad("Quantum", p.Quantum, "> 0")
	case p.MaxDebt < 0:
		return bad("MaxDebt", p.MaxDebt, ">= 0")
	case p.BurstCredits < 0:
		return bad("BurstCredits", p.BurstCredits, ">= 0")
	case p.BurstAccrual < 0:
		return bad("BurstAccrual", p.BurstAccrual, ">= 0")
	case p.BurstCredits > 0 && p.BurstHalfLife <= 0:
		return bad("BurstHalfLife", p.BurstHalfLife, "> 0 when BurstCredits > 0")
	case p.FairnessWindow != 0 && p.FairnessWindow < time.Second:
		return bad("FairnessWindow", p.FairnessWindow, "0 (off) or >= 1s")
	case p.PenaltyThreshold < 1:
		return bad("PenaltyThreshold", p.PenaltyThreshold, ">= 1")
	case p.PenaltyExponent < 1:
		return bad("PenaltyExponent", p.PenaltyExponent, ">= 1")
	case p.MinPenaltyFactor <= 0 || p.MinPenaltyFactor > 1:
		return bad("MinPenaltyFactor", p.MinPenaltyFactor, "in (0, 1]")
	case p.PenaltyMinTokens < 0:
		return bad("PenaltyMinTokens", p.PenaltyMinTokens, ">= 0")
	case p.WaitBonusPerSecond < 0:
		return bad("WaitBonusPerSecond", p.WaitBonusPerSecond, ">= 0")
	case p.CostLearningRate < 0 || p.CostLearningRate > 1:
		return bad("CostLearningRate", p.CostLearningRate, "in [0, 1]")
	case p.MaxQueuePerUser < 1:
		return bad("MaxQueuePerUser", p.MaxQueuePerUser, ">= 1")
	case p.MaxQueuePerModel < 1:
		return bad("MaxQueuePerModel", p.MaxQueuePerModel, ">= 1")
	case p.QueueTimeout < 0:
		return bad("QueueTimeout", p.QueueTimeout, ">= 0")
	}
	return nil
}

// DefaultGroupWeights returns the scheduler weight of each built-in group:
// admin 10, faculty 3, staff 2, student 1. Operators change them per group.
func DefaultGroupWeights() map[string]int {
	return map[string]int{"admin": 10, "faculty": 3, "staff": 2, "student": 1}
}

// ResolveWeight returns a user's weight: the per-user override when positive, else
// the group's weight when positive, else 1.
func ResolveWeight(groupWeight, override int) int {
	switch {
	case override > 0:
		return override
	case groupWeight > 0:
		return groupWeight
	}
	return 1
}
