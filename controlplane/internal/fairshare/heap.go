package fairshare

// The ring as a binary min-heap of active users keyed by (round, seq). Hand-written
// rather than container/heap to keep the hot path free of interface calls.

func less(a, b *user) bool {
	if a.round != b.round {
		return a.round < b.round
	}
	return a.seq < b.seq
}

func (p *Pool) heapPush(u *user) {
	u.heapIdx = len(p.heap)
	p.heap = append(p.heap, u)
	p.up(u.heapIdx)
}

func (p *Pool) heapRemove(u *user) {
	i := u.heapIdx
	if i < 0 {
		return
	}
	n := len(p.heap) - 1
	if i != n {
		p.swap(i, n)
	}
	p.heap[n] = nil
	p.heap = p.heap[:n]
	u.heapIdx = -1
	if i != n {
		p.heapFixAt(i)
	}
}

func (p *Pool) heapFix(u *user) {
	if u.heapIdx >= 0 {
		p.heapFixAt(u.heapIdx)
	}
}

func (p *Pool) heapFixAt(i int) {
	if !p.down(i) {
		p.up(i)
	}
}

func (p *Pool) swap(i, j int) {
	h := p.heap
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx = i
	h[j].heapIdx = j
}

func (p *Pool) up(j int) {
	for j > 0 {
		i := (j - 1) / 2
		if !less(p.heap[j], p.heap[i]) {
			break
		}
		p.swap(i, j)
		j = i
	}
}

// down sifts element i down and reports whether it moved.
func (p *Pool) down(i0 int) bool {
	i, n := i0, len(p.heap)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		j := l
		if r := l + 1; r < n && less(p.heap[r], p.heap[l]) {
			j = r
		}
		if !less(p.heap[j], p.heap[i]) {
			break
		}
		p.swap(i, j)
		i = j
	}
	return i > i0
}
