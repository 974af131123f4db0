package quota

// window is an exact sliding log of request times (nanoseconds on the manager's
// clock) over the last rpmWindow. It keeps the newest n times in a ring; the ring
// grows only while that many requests are inside the window, so a light user's
// log stays small whatever their limit.
type window struct {
	ts   []int64
	head int // index of the oldest kept time
	n    int // times kept
}

// initialWindow is the ring size a window starts with.
const initialWindow = 8

// allow reports whether one more request at now stays within limit requests per
// window; when not, wait is how long until the oldest counted request leaves it.
func (w *window) allow(now int64, limit int) (ok bool, wait int64) {
	w.fit(limit)
	if w.n < limit {
		return true, 0
	}
	oldest := w.ts[w.head]
	if now-oldest >= int64(rpmWindow) {
		return true, 0
	}
	return false, oldest + int64(rpmWindow) - now
}

// add records a request at now; allow must have said yes for the same limit.
func (w *window) add(now int64, limit int) {
	if w.n == len(w.ts) {
		if w.n > 0 && now-w.ts[w.head] >= int64(rpmWindow) {
			// The oldest has left the window: reuse its slot.
			w.ts[w.head] = now
			w.head = w.next(w.head)
			return
		}
		// Every kept request is still inside the window and allow found room
		// (n < limit): grow.
		w.resize(min(max(2*len(w.ts), initialWindow), limit))
	}
	i := w.head + w.n
	if i >= len(w.ts) {
		i -= len(w.ts)
	}
	w.ts[i] = now
	w.n++
}

// fit shrinks the ring to a lowered limit, keeping the newest times.
func (w *window) fit(limit int) {
	if len(w.ts) > limit {
		w.resize(limit)
	}
}

// resize moves the newest min(n, size) times into a ring of size.
func (w *window) resize(size int) {
	keep := min(w.n, size)
	ts := make([]int64, size)
	for i := range keep {
		j := w.head + w.n - keep + i
		if j >= len(w.ts) {
			j -= len(w.ts)
		}
		ts[i] = w.ts[j]
	}
	w.ts, w.head, w.n = ts, 0, keep
}

func (w *window) next(i int) int {
	i++
	if i == len(w.ts) {
		return 0
	}
	return i
}

// count is the number of kept requests inside the window at now.
func (w *window) count(now int64) int {
	c := 0
	for i := range w.n {
		j := w.head + i
		if j >= len(w.ts) {
			j -= len(w.ts)
		}
		if now-w.ts[j] < int64(rpmWindow) {
			c++
		}
	}
	return c
}
