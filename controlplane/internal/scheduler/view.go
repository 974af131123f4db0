package scheduler

import (
	"cmp"
	"slices"
	"time"
)

// Shares is implemented by policies that keep per-user fair-share state
// (FairShare). The Queue calls it with its lock held, like every Policy method.
type Shares interface {
	// Deficit is the user's credit in model's pool, in tokens (negative: debt).
	Deficit(model string, user int64) int64
	// Users appends the fair-share state of every user the policy knows, one entry
	// per user summed over the model pools, and returns the extended slice. Waiting
	// and InFlight are left for the Queue to fill.
	Users(dst []UserShare) []UserShare
	// FairnessWindow is how far back recent usage counts (0: no window).
	FairnessWindow() time.Duration
}

// UserShare is one user's state in the queue view.
type UserShare struct {
	UserID int64
	// Weight is the user's fair-share weight (the latest request's).
	Weight int
	// Deficit is the user's credit in tokens, summed over models (negative: debt).
	Deficit int64
	// BurstCredits is what an idle user would bring into a queue now.
	BurstCredits int64
	// RecentTokens is the usage charged in the fairness window.
	RecentTokens int64
	// Penalty is the factor on the user's credit rate (1: none); the smallest over
	// the models.
	Penalty float64
	// Waiting and InFlight count the user's queued and granted tickets.
	Waiting  int
	InFlight int
}

// ModelLoad is one model's queue in the view.
type ModelLoad struct {
	Model    string
	Waiting  int
	InFlight int
	// Oldest is when the longest-waiting ticket arrived; zero when none waits.
	Oldest time.Time
}

// BackendLoad is one backend's granted slots.
type BackendLoad struct {
	BackendID int64
	InFlight  int
}

// Snapshot is the Queue's state at one instant, for the admin queue view.
type Snapshot struct {
	// Models with waiting or in-flight tickets, by name.
	Models []ModelLoad
	// Backends with slots in flight, by id.
	Backends []BackendLoad
	// Users with fair-share state, waiting or in-flight tickets, by id.
	Users []UserShare
	// FairnessWindow is the policy's recent-usage window (0: none).
	FairnessWindow time.Duration
}

// Snapshot copies the queues, the in-flight counts and the policy's per-user
// state. It is O(users + waiters + backends) under the Queue's lock; it is meant
// for the admin view, not for the hot path.
func (q *Queue) Snapshot() Snapshot {
	q.mu.Lock()
	defer q.mu.Unlock()
	var snap Snapshot
	users := make(map[int64]*UserShare)
	user := func(id int64) *UserShare {
		u := users[id]
		if u == nil {
			u = &UserShare{UserID: id, Penalty: 1}
			users[id] = u
		}
		return u
	}
	if q.shares != nil {
		snap.FairnessWindow = q.shares.FairnessWindow()
		for _, s := range q.shares.Users(nil) {
			u := user(s.UserID)
			*u = s
		}
	}
	models := make(map[string]*ModelLoad)
	model := func(name string) *ModelLoad {
		m := models[name]
		if m == nil {
			m = &ModelLoad{Model: name}
			models[name] = m
		}
		return m
	}
	for name, l := range q.arrivals {
		m := model(name)
		m.Waiting = l.n
		m.Oldest = l.head.ticket.Enqueued
		for w := l.head; w != nil; w = w.anext {
			user(w.ticket.UserID).Waiting++
		}
	}
	for name, n := range q.modelLoad {
		model(name).InFlight = n
	}
	for id, n := range q.userLoad {
		user(id).InFlight = n
	}
	for id, n := range q.inflight {
		snap.Backends = append(snap.Backends, BackendLoad{BackendID: id, InFlight: n})
	}
	for _, m := range models {
		snap.Models = append(snap.Models, *m)
	}
	for _, u := range users {
		snap.Users = append(snap.Users, *u)
	}
	slices.SortFunc(snap.Models, func(a, b ModelLoad) int { return cmp.Compare(a.Model, b.Model) })
	slices.SortFunc(snap.Backends, func(a, b BackendLoad) int { return cmp.Compare(a.BackendID, b.BackendID) })
	slices.SortFunc(snap.Users, func(a, b UserShare) int { return cmp.Compare(a.UserID, b.UserID) })
	return snap
}

// Adopt counts a slot granted before this Queue existed: a lease that a data-plane
// replica still holds after a control-plane restart. The slot is in flight on
// backendID whatever the backend's limit (the request is running there already),
// and the returned grant is released like any other. The policy is charged the
// ticket's Cost (at least 1 token), which Release then corrects to the real cost.
func (q *Queue) Adopt(t Ticket, backendID int64) Grant {
	t.Enqueued = q.opts.Now()
	g := Grant{BackendID: backendID, Ticket: t}
	q.mu.Lock()
	q.policy.Charge(t)
	q.hold(g)
	q.mu.Unlock()
	return g
}

// hold counts g in flight. The caller holds q.mu.
func (q *Queue) hold(g Grant) {
	q.inflight[g.BackendID]++
	q.modelLoad[g.Ticket.Model]++
	q.userLoad[g.Ticket.UserID]++
}

// deficit is the user's credit before t is charged. The caller holds q.mu.
func (q *Queue) deficit(t Ticket) int64 {
	if q.shares == nil {
		return 0
	}
	return q.shares.Deficit(t.Model, t.UserID)
}

// arrivalList links a model's waiters in arrival order through Waiter.aprev/anext.
type arrivalList struct {
	head, tail *Waiter
	n          int
}

// arrival returns model's list, creating it. The caller holds q.mu.
func (q *Queue) arrival(model string) *arrivalList {
	l := q.arrivals[model]
	if l == nil {
		l = &arrivalList{}
		q.arrivals[model] = l
	}
	return l
}

func (l *arrivalList) push(w *Waiter) {
	w.aprev, w.anext = l.tail, nil
	if l.tail != nil {
		l.tail.anext = w
	} else {
		l.head = w
	}
	l.tail = w
	l.n++
}

// unqueue takes w off its model's arrival list. The caller holds q.mu.
func (q *Queue) unqueue(w *Waiter) {
	l := q.arrivals[w.ticket.Model]
	if l == nil {
		return
	}
	if w.aprev != nil {
		w.aprev.anext = w.anext
	} else {
		l.head = w.anext
	}
	if w.anext != nil {
		w.anext.aprev = w.aprev
	} else {
		l.tail = w.aprev
	}
	w.aprev, w.anext = nil, nil
	l.n--
	if l.n == 0 {
		delete(q.arrivals, w.ticket.Model)
	}
}
