package fairshare

import (
	"math"
	"time"
)

// windowBuckets is the number of buckets the fairness window is kept in.
const windowBuckets = 30

// sweepWithoutWindow is how often idle users are forgotten when the window is off.
const sweepWithoutWindow = 10 * time.Second

// window is the pool's record of recent usage: tokens charged per bucket, for the
// pool and (in each user) per user, over the last FairnessWindow.
type window struct {
	enabled bool
	width   int64 // bucket width in nanoseconds
	bucket  int64 // absolute index of the current bucket
	buckets [windowBuckets]int64
	total   int64
	// Buckets (absolute indexes) that the last advance expired; sweep clears them
	// in every user.
	expFrom, expTo int64
	// Sum of the weights of the users present: queued, in flight or with usage in
	// the window. The fair share of a user is its weight over this sum.
	presentWeight int64
}

func (w *window) init(d time.Duration, now time.Time) {
	w.enabled = d > 0
	w.width = int64(sweepWithoutWindow)
	if w.enabled {
		w.width = max(int64(d)/windowBuckets, 1)
	}
	w.bucket = now.UnixNano() / w.width
}

// advance moves to now's bucket, zeroing the pool's expired buckets, and reports
// whether a boundary passed (the caller then sweeps the users).
func (w *window) advance(now time.Time) bool {
	b := now.UnixNano() / w.width
	if b <= w.bucket {
		return false
	}
	w.expFrom, w.expTo = w.bucket+1, b
	if w.expTo-w.expFrom >= windowBuckets {
		w.expFrom = w.expTo - windowBuckets + 1
	}
	for i := w.expFrom; i <= w.expTo; i++ {
		k := i % windowBuckets
		w.total -= w.buckets[k]
		w.buckets[k] = 0
	}
	w.bucket = b
	return true
}

// expire clears in u the buckets the last advance expired.
func (w *window) expire(u *user) {
	if !w.enabled || u.winTotal == 0 {
		return
	}
	for i := w.expFrom; i <= w.expTo; i++ {
		k := i % windowBuckets
		u.winTotal -= u.win[k]
		u.win[k] = 0
	}
	if allZero(&u.win) {
		u.winTotal = 0 // settle refunds may leave a bucket negative
	}
}

func allZero(b *[windowBuckets]int64) bool {
	for _, v := range b {
		if v != 0 {
			return false
		}
	}
	return true
}

// add records tokens (negative for a settle refund) for u in the current bucket.
func (w *window) add(u *user, tokens int64) {
	if !w.enabled {
		return
	}
	k := w.bucket % windowBuckets
	u.win[k] += tokens
	u.winTotal += tokens
	w.buckets[k] += tokens
	w.total += tokens
}

// presence updates whether u counts towards the present weight.
func (w *window) presence(u *user) {
	now := u.queued > 0 || u.inflight > 0 || u.winTotal > 0
	if now == u.present {
		return
	}
	u.present = now
	if now {
		w.presentWeight += int64(u.weight)
	} else {
		w.presentWeight -= int64(u.weight)
	}
}

// factor is u's penalty: 1 while u's share of the window's tokens is at most
// PenaltyThreshold times its weighted fair share (its weight over the present
// weight), then (threshold/ratio)^PenaltyExponent, floored at MinPenaltyFactor.
//
// The factor multiplies u's quantum, which is always positive, so a smaller factor
// always means slower credit and a later turn. The ratio grows with u's usage
// (u/(u+others) is increasing in u), so the penalty only ever strengthens as usage
// grows. (The original multiplied a priority that was normally negative by the
// factor, so a heavier user's priority moved towards zero — up.)
func (w *window) factor(u *user, p Params) float64 {
	if !w.enabled || w.total < p.PenaltyMinTokens || w.total <= 0 || u.winTotal <= 0 || w.presentWeight <= 0 {
		return 1
	}
	share := float64(u.winTotal) / float64(w.total)
	fair := float64(u.weight) / float64(w.presentWeight)
	ratio := share / fair
	if ratio <= p.PenaltyThreshold {
		return 1
	}
	f := p.PenaltyThreshold / ratio
	switch p.PenaltyExponent {
	case 1:
	case 2:
		f *= f
	default:
		f = math.Pow(f, p.PenaltyExponent)
	}
	return max(f, p.MinPenaltyFactor)
}

// burstClock integrates how long the pool has been uncontended (idle) and
// contended (busy): idle users earn credits in the first, everybody's unspent
// credits decay in the second.
type burstClock struct {
	last       time.Time
	idle, busy float64 // seconds
}

func (b *burstClock) advance(now time.Time, contended bool) {
	dt := now.Sub(b.last)
	if dt <= 0 {
		return
	}
	if contended {
		b.busy += dt.Seconds()
	} else {
		b.idle += dt.Seconds()
	}
	b.last = now
}

// credits returns u's burst credits now.
func (b *burstClock) credits(u *user, p Params) float64 {
	if p.BurstCredits <= 0 || u.active {
		return 0
	}
	c := u.credits
	if d := b.busy - u.busyMark; d > 0 && c > 0 {
		c *= math.Exp2(-d / p.BurstHalfLife.Seconds())
	}
	if d := b.idle - u.idleMark; d > 0 {
		c += p.BurstAccrual * float64(u.weight) * d
	}
	return min(c, float64(p.BurstCredits)*float64(u.weight))
}

// take spends all of u's credits.
func (b *burstClock) take(u *user, p Params) float64 {
	c := b.credits(u, p)
	b.park(u)
	return c
}

// park resets u's credits to zero as of now.
func (b *burstClock) park(u *user) {
	u.credits = 0
	u.idleMark, u.busyMark = b.idle, b.busy
}
