package quota

import "time"

// recentIDs is how many settled request ids a user remembers, so that a retry
// attempt of the same request (same id, new Admit) does not count as a new
// request against the rate limit.
const recentIDs = 4

// user is one user's state; every field is guarded by its shard's lock.
type user struct {
	id int64
	// used is the tokens charged this period, lifetime those ever charged.
	used, lifetime int64
	// reserved is the tokens held by unsettled reservations.
	reserved int64
	// periodStart is the start of the current period, nanoseconds on the
	// manager's clock; period its length.
	periodStart int64
	period      time.Duration
	// budget and rpmLimit are the limits last seen in an Account (0 = none).
	budget   int64
	rpmLimit int
	inFlight int
	rpm      window
	keys     map[int64]*keyWindow
	held     map[string]hold
	recent   [recentIDs]string
	recentAt uint8
	// dirty is set when used, lifetime or the period changed since the last
	// flush.
	dirty bool
}

// keyWindow is the request-rate state of one API key.
type keyWindow struct {
	limit int
	window
}

// hold is what a request id holds. n > 1 only when attempts of the same
// request overlap.
type hold struct {
	tokens int64
	n      int32
}

func newUser(id, now int64, period time.Duration) *user {
	return &user{id: id, periodStart: now, period: period, held: make(map[string]hold, 4)}
}

// roll starts a new period when the current one has run out: usage goes back to
// zero and the new period starts now (the reference's rolling period).
func (u *user) roll(now int64) {
	if now-u.periodStart >= int64(u.period) {
		u.used = 0
		u.periodStart = now
		u.dirty = true
	}
}

// charge adds a settled request's cost to the current period (rolled first) and
// remembers its id.
func (u *user) charge(now, cost int64, requestID string) {
	u.roll(now)
	if cost > 0 {
		u.used += cost
		u.lifetime += cost
		u.dirty = true
	}
	u.remember(requestID)
}

// remember records a settled request id.
func (u *user) remember(id string) {
	u.recent[u.recentAt] = id
	u.recentAt = (u.recentAt + 1) % recentIDs
}

// retry reports whether id is a request the user holds or recently settled.
func (u *user) retry(id string, held bool) bool {
	if held {
		return true
	}
	if id == "" {
		return false
	}
	for _, r := range u.recent {
		if r == id {
			return true
		}
	}
	return false
}

func (u *user) key(id int64) *keyWindow {
	if u.keys == nil {
		u.keys = make(map[int64]*keyWindow, 1)
	}
	k := u.keys[id]
	if k == nil {
		k = &keyWindow{}
		u.keys[id] = k
	}
	return k
}
