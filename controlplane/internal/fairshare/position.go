package fairshare

import "math"

// Position returns the estimated 1-based position of a queued request (1 = next to
// be dispatched), or 0 when id is not queued. It is meant for the client's
// queue-position header and the admin queue view, not for decisions.
func (p *Pool) Position(id string) int {
	e := p.byID[id]
	if e == nil {
		return 0
	}
	p.tick()
	return p.position(e)
}

// position estimates how many dispatches come before e. The user's own requests
// ahead of e come first. While the user earns the credit it still lacks for them
// and e (lack tokens, at q per round), every other queued user earns its own q per
// round; a fluid approximation turns the others' credit into requests at their
// average expected cost, capped by what they have queued. O(requests of e's user).
func (p *Pool) position(e *entry) int {
	u := e.u
	k := 0
	var through int64
	for x := u.head; x != nil; x = x.next {
		k++
		through += x.req.Cost
		if x == e {
			break
		}
	}
	lack := u.expected(through) - (u.deficit + float64(p.round-u.base)*u.q)
	othersN := p.queued - u.queued
	othersQ := p.sumQ - u.q
	if lack <= 0 || othersN <= 0 || othersQ <= 0 || u.q <= 0 {
		return k
	}
	avg := max(p.queuedExpected-float64(u.queuedCost)*u.ratio, 1) / float64(othersN)
	ahead := math.Floor(lack / u.q * othersQ / avg)
	return k + int(min(ahead, float64(othersN)))
}
