package admission

import (
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"

	"github.com/mindrouter/mindrouter/controlplane/internal/scheduler"
	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

// lease is one granted slot. Every field but expires and progress is fixed at
// creation; those two are guarded by the table's lock while the lease is in it.
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
	// waited is how long the request queued for its slot.
	waited time.Duration
	// adopted is true for a lease recreated from a replica's heartbeat after a
	// control-plane restart, and for the stand-in of a Release without a lease.
	adopted bool
	// trial is true when the request is its backend's half-open circuit trial: an
	// end that says nothing about the backend gives the trial back.
	trial bool
	// noSlot is true for a lease that holds quota but no backend slot (a web
	// search): freeing it settles the quota and touches no backend.
	noSlot bool
	// progress is the usage its replica's last heartbeat reported; reported is
	// false until one did. A lease lost with its replica is charged this.
	progress struct {
		reported           bool
		prompt, completion int64
	}
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
	// leaseClaimed: unknown, and now remembered as settled by the caller, who
	// settles it without a lease (a Release after a control-plane restart).
	leaseClaimed
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
	t.addLocked(l)
	t.mu.Unlock()
}

func (t *leaseTable) addLocked(l *lease) {
	t.byID[l.id] = l
	if l.replica != "" {
		m := t.byReplica[l.replica]
		if m == nil {
			m = make(map[string]*lease)
			t.byReplica[l.replica] = m
		}
		m[l.id] = l
	}
}

// removeLocked unindexes l and remembers it as settled.
func (t *leaseTable) removeLocked(l *lease, now time.Time) {
	delete(t.byID, l.id)
	// A replica's map is kept when it empties (replicas are few, and most come
	// back at once); takeReplica forgets it.
	delete(t.byReplica[l.replica], l.id)
	t.settled.add(l.id, now)
}

// take removes the lease id for its settlement. With claim, an id it neither
// holds nor remembers is remembered as settled at once (leaseClaimed), so that
// exactly one caller settles it and a later heartbeat does not adopt it.
func (t *leaseTable) take(id string, claim bool, now time.Time) (*lease, takeResult) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if l, ok := t.byID[id]; ok {
		t.removeLocked(l, now)
		return l, leaseTaken
	}
	if t.settled.has(id) {
		return nil, leaseAlreadySettled
	}
	if claim {
		t.settled.add(id, now)
		return nil, leaseClaimed
	}
	return nil, leaseUnknown
}

// adoptable returns the refs whose lease id the table neither holds nor
// remembers as settled: leases granted before a restart.
func (t *leaseTable) adoptable(refs []*controlplanev1.LeaseRef) []*controlplanev1.LeaseRef {
	var out []*controlplanev1.LeaseRef
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, r := range refs {
		if _, ok := t.byID[r.GetLeaseId()]; ok || t.settled.has(r.GetLeaseId()) {
			continue
		}
		out = append(out, r)
	}
	return out
}

// addNew adds l unless its id is held or was settled meanwhile, and reports
// whether it did.
func (t *leaseTable) addNew(l *lease) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, held := t.byID[l.id]; held || t.settled.has(l.id) {
		return false
	}
	t.addLocked(l)
	return true
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
	delete(t.byReplica, replica)
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

// record keeps the progress the replica reports for its leases.
func (t *leaseTable) record(replica string, refs []*controlplanev1.LeaseRef) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, ref := range refs {
		if !ref.GetProgressReported() {
			continue
		}
		l, ok := t.byID[ref.GetLeaseId()]
		if !ok || l.replica != replica {
			continue
		}
		l.progress.reported = true
		l.progress.prompt = max(ref.GetPromptTokens(), 0)
		l.progress.completion = max(ref.GetCompletionTokens(), 0)
	}
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
