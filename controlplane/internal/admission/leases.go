package admission

import (
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"

	"github.com/mindrouter/mindrouter/controlplane/internal/scheduler"
)

// lease is one granted slot. Every field but expires is fixed at creation;
// expires is guarded by the table's lock.
type lease struct {
	id        string
	requestID string
	replica   string
	cand      Candidate
	grant     scheduler.Grant
	principal Principal
	reserved  Reservation
	admitted  time.Time
	expires   time.Time
}

// newLeaseID returns 16 random bytes in hex.
func newLeaseID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	return hex.EncodeToString(b[:])
}

// takeResult says what take found.
type takeResult int

const (
	leaseTaken takeResult = iota + 1
	leaseAlreadySettled
	leaseUnknown
)

// leaseTable indexes live leases by id and by replica, and remembers recently
// settled ids. Removing a lease from it is what settles the lease: whoever removes
// it frees the slot, so a lease is freed exactly once.
type leaseTable struct {
	mu        sync.Mutex
	byID      map[string]*lease
	byReplica map[string]map[string]*lease
	settled   recentSet
}

func newLeaseTable(memory int, ttl time.Duration) *leaseTable {
	return &leaseTable{
		byID:      make(map[string]*lease),
		byReplica: make(map[string]map[string]*lease),
		settled:   recentSet{max: memory, ttl: ttl},
	}
}

func (t *leaseTable) add(l *lease) {
	t.mu.Lock()
	t.byID[l.id] = l
	if l.replica != "" {
		m := t.byReplica[l.replica]
		if m == nil {
			m = make(map[string]*lease)
			t.byReplica[l.replica] = m
		}
		m[l.id] = l
	}
	t.mu.Unlock()
}

// removeLocked unindexes l and remembers it as settled.
func (t *leaseTable) removeLocked(l *lease, now time.Time) {
	delete(t.byID, l.id)
	if m := t.byReplica[l.replica]; m != nil {
		delete(m, l.id)
		if len(m) == 0 {
			delete(t.byReplica, l.replica)
		}
	}
	t.settled.add(l.id, now)
}

// take removes the lease id for its settlement.
func (t *leaseTable) take(id string, now time.Time) (*lease, takeResult) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if l, ok := t.byID[id]; ok {
		t.removeLocked(l, now)
		return l, leaseTaken
	}
	if t.settled.has(id) {
		return nil, leaseAlreadySettled
	}
	return nil, leaseUnknown
}

// takeExpired removes every lease whose expiry is not after now.
func (t *leaseTable) takeExpired(now time.Time) []*lease {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*lease
	for _, l := range t.byID {
		if !l.expires.After(now) {
			out = append(out, l)
		}
	}
	for _, l := range out {
		t.removeLocked(l, now)
	}
	return out
}

// takeReplica removes every lease a replica holds.
func (t *leaseTable) takeReplica(replica string, now time.Time) []*lease {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.byReplica[replica]
	out := make([]*lease, 0, len(m))
	for _, l := range m {
		out = append(out, l)
	}
	for _, l := range out {
		t.removeLocked(l, now)
	}
	return out
}

// renew pushes the expiry of the replica's leases among ids to expires and returns
// the ids it does not know for that replica.
func (t *leaseTable) renew(replica string, ids []string, expires time.Time) []string {
	var unknown []string
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, id := range ids {
		l, ok := t.byID[id]
		if !ok || l.replica != replica {
			unknown = append(unknown, id)
			continue
		}
		if expires.After(l.expires) {
			l.expires = expires
		}
	}
	return unknown
}

// count is the number of live leases.
func (t *leaseTable) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.byID)
}

// recentSet remembers ids for at least min(ttl/2, the time max/2 later additions
// take) and at most ttl, in two generations of at most max/2 ids each.
type recentSet struct {
	max       int
	ttl       time.Duration
	cur, prev map[string]struct{}
	rotated   time.Time
}

func (r *recentSet) add(id string, now time.Time) {
	if r.cur == nil || len(r.cur) >= r.max/2 || now.Sub(r.rotated) >= r.ttl/2 {
		r.prev, r.cur, r.rotated = r.cur, make(map[string]struct{}), now
	}
	r.cur[id] = struct{}{}
}

func (r *recentSet) has(id string) bool {
	if _, ok := r.cur[id]; ok {
		return true
	}
	_, ok := r.prev[id]
	return ok
}
