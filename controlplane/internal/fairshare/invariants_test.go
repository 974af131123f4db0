package fairshare

import (
	"encoding/binary"
	"fmt"
	"math"
	"testing"
	"time"
)

// checkInvariants verifies the pool's internal bookkeeping.
func checkInvariants(t testing.TB, p *Pool) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf(format, args...)
	}
	// Heap order and indexes; keys never behind the cursor.
	for i, u := range p.heap {
		if u.heapIdx != i {
			fail("user %d: heapIdx %d at %d", u.id, u.heapIdx, i)
		}
		if i > 0 && less(u, p.heap[(i-1)/2]) {
			fail("heap order broken at %d", i)
		}
		if u.round < p.round || (u.round == p.round && u.seq < p.cursor) {
			fail("user %d: key (%d,%d) behind cursor (%d,%d)", u.id, u.round, u.seq, p.round, p.cursor)
		}
	}
	// Users, queues and counters.
	var queued, active, present int
	var cost, presentWeight int64
	var sumQ float64
	for id, u := range p.users {
		if u.id != id {
			fail("user key %d holds %d", id, u.id)
		}
		n, c := 0, int64(0)
		for e := u.head; e != nil; e = e.next {
			if e.u != u {
				fail("entry %q linked to the wrong user", e.req.ID)
			}
			n++
			c += e.req.Cost
		}
		if n != u.queued || c != u.queuedCost {
			fail("user %d: %d/%d queued, counted %d/%d", id, u.queued, u.queuedCost, n, c)
		}
		if u.active != (u.queued > 0) || u.active != (u.heapIdx >= 0) {
			fail("user %d: active %v, queued %d, heapIdx %d", id, u.active, u.queued, u.heapIdx)
		}
		if u.active {
			active++
			sumQ += u.q
		}
		if !u.active && u.deficit > 0 {
			fail("user %d left the ring with credit %.1f", id, u.deficit)
		}
		if u.deficit < -p.debtLimit(u)-1e-6 {
			fail("user %d: deficit %.1f below the debt limit", id, u.deficit)
		}
		if u.factor < p.prm.MinPenaltyFactor || u.factor > 1 {
			fail("user %d: factor %v", id, u.factor)
		}
		var w int64
		for _, v := range u.win {
			w += v
		}
		if w != u.winTotal {
			fail("user %d: window total %d, buckets %d", id, u.winTotal, w)
		}
		if u.present != (u.queued > 0 || u.inflight > 0 || u.winTotal > 0) {
			fail("user %d: present %v", id, u.present)
		}
		if u.present {
			present++
			presentWeight += int64(u.weight)
		}
		queued += u.queued
		cost += u.queuedCost
	}
	if queued != p.queued || cost != p.queuedCost || len(p.heap) != active {
		fail("pool: %d/%d queued, %d in heap; users say %d/%d, %d active", p.queued, p.queuedCost, len(p.heap), queued, cost, active)
	}
	if math.Abs(sumQ-p.sumQ) > 1e-6*max(1, sumQ) {
		fail("sumQ %v, users say %v", p.sumQ, sumQ)
	}
	if presentWeight != p.win.presentWeight {
		fail("present weight %d, users say %d", p.win.presentWeight, presentWeight)
	}
	var w int64
	for _, v := range p.win.buckets {
		w += v
	}
	if w != p.win.total {
		fail("window total %d, buckets %d", p.win.total, w)
	}
	// Arrival order and index.
	n, indexed := 0, 0
	for e := p.first; e != nil; e = e.anext {
		n++
		if e.indexed {
			indexed++
			if p.byID[e.req.ID] != e {
				fail("entry %q not indexed", e.req.ID)
			}
		}
	}
	if n != p.queued || indexed != len(p.byID) {
		fail("arrival list %d, queued %d; indexed %d, byID %d", n, p.queued, indexed, len(p.byID))
	}
	// Wait order: every active user once, oldest head first.
	seen := 0
	var prev time.Time
	for u := p.oldest; u != nil; u = u.hnext {
		seen++
		if !u.active || u.headSince.Before(prev) {
			fail("wait order broken at user %d", u.id)
		}
		prev = u.headSince
	}
	if seen != active {
		fail("wait order has %d users, %d active", seen, active)
	}
}

// FuzzPoolOps runs random operation sequences and checks the invariants after each.
func FuzzPoolOps(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
	f.Add([]byte("enqueue enqueue next settle remove charge expire"))
	f.Add(binary.LittleEndian.AppendUint64(nil, 0xdeadbeefcafef00d))
	f.Fuzz(func(t *testing.T, ops []byte) {
		now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
		prm := DefaultParams()
		prm.MaxQueuePerUser, prm.MaxQueuePerModel = 5, 12
		p, err := NewPool(prm, func() time.Time { return now })
		if err != nil {
			t.Fatal(err)
		}
		type flight struct {
			user int64
			cost int64
		}
		var inflight []flight
		for i := 0; i+2 < len(ops); i += 3 {
			op, a, b := ops[i], ops[i+1], ops[i+2]
			now = now.Add(time.Duration(b) * 200 * time.Millisecond)
			id := fmt.Sprintf("r%d", a%16)
			switch op % 7 {
			case 0, 1:
				_, _ = p.Enqueue(Request{ID: id, User: int64(a % 5), Weight: int(b%11) - 1, Cost: int64(a) * int64(b) * 7})
			case 2:
				p.Remove(id)
			case 3:
				peek, ok := p.Peek()
				r, ok2 := p.Next()
				if ok != ok2 || ok != (p.Len() > 0 || ok) || (ok && peek.ID != r.ID) {
					t.Fatalf("Peek %v/%q, Next %v/%q", ok, peek.ID, ok2, r.ID)
				}
				if ok {
					inflight = append(inflight, flight{r.User, r.Cost})
				}
			case 4:
				if len(inflight) > 0 {
					fl := inflight[int(a)%len(inflight)]
					inflight = append(inflight[:int(a)%len(inflight)], inflight[int(a)%len(inflight)+1:]...)
					p.Settle(fl.user, fl.cost, int64(b)*40)
				}
			case 5:
				r := Request{User: int64(a % 5), Weight: 1, Cost: int64(b) * 30}
				p.Charge(r)
				inflight = append(inflight, flight{r.User, max(r.Cost, 1)})
			case 6:
				now = now.Add(time.Duration(a) * time.Second)
				p.Expire(nil)
				p.Stats()
			}
			checkInvariants(t, p)
			if _, ok := p.Peek(); ok != (p.Len() > 0) {
				t.Fatalf("work conservation: Peek %v with %d queued", ok, p.Len())
			}
		}
	})
}
