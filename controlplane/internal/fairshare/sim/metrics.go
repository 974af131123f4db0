package sim

import (
	"slices"
	"time"
)

// QueueTimeout is the scheduler's default queue timeout; the report counts the
// waits that would have exceeded it (the simulation lets them wait on).
const QueueTimeout = 150 * time.Second

// Waits summarises queue waits (enqueue to dispatch).
type Waits struct {
	N             int
	P50, P95, Max time.Duration
}

// UserResult is one user's outcome.
type UserResult struct {
	Name        string
	Weight      int
	Interactive bool
	// Requests dispatched and their real tokens (prompt + output).
	Requests int
	Tokens   int64
	// Share is the user's fraction of all dispatched tokens.
	Share float64
	Wait  Waits
}

// Result is the outcome of one simulation.
type Result struct {
	Scenario string
	Policy   Policy
	Duration time.Duration
	// Jain is the mean Jain index of weight-normalised service (tokens dispatched
	// divided by weight) over the windows in which at least two users were
	// backlogged (had a request queued) for the whole window, counting only those
	// users; JainWindows is how many windows qualified, out of Windows.
	Jain                 float64
	JainWindows, Windows int
	// Utilisation is busy slot time over available slot time.
	Utilisation float64
	// Interactive pools the waits of interactive users' requests, including those
	// still queued at the end (their wait so far).
	Interactive Waits
	// BatchTokensPerSecond is the real tokens of automated users' requests
	// completed per second.
	BatchTokensPerSecond float64
	// OverTimeout counts waits longer than QueueTimeout.
	OverTimeout int
	Users       []UserResult
}

type userRec struct {
	spec       UserSpec
	waits      []time.Duration
	requests   int
	tokens     int64
	windowTok  []int64
	emptyIn    []bool
	emptySince time.Duration // -1 while backlogged
}

// recorder collects what a run needs for its Result.
type recorder struct {
	window    time.Duration
	users     []userRec
	busy      time.Duration // slot time
	slots     int
	batchDone int64
}

func newRecorder(s Scenario, c Cluster) *recorder {
	n := int(s.Duration / s.Window)
	rec := &recorder{window: s.Window, slots: c.Slots(), users: make([]userRec, len(s.Users))}
	for i, spec := range s.Users {
		rec.users[i] = userRec{spec: spec, windowTok: make([]int64, n), emptyIn: make([]bool, n)}
	}
	return rec
}

// queueChanged notes user's queue length n at now.
func (rec *recorder) queueChanged(user, n int, now time.Duration) {
	u := &rec.users[user]
	switch {
	case n == 0 && u.emptySince < 0:
		u.emptySince = now
	case n > 0 && u.emptySince >= 0:
		rec.markEmpty(u, u.emptySince, now)
		u.emptySince = -1
	}
}

// markEmpty flags the windows that overlap the empty interval [from, to).
func (rec *recorder) markEmpty(u *userRec, from, to time.Duration) {
	if to <= from {
		return
	}
	last := int((to + rec.window - 1) / rec.window)
	for k := int(from / rec.window); k < last && k < len(u.emptyIn); k++ {
		u.emptyIn[k] = true
	}
}

// started records a dispatch of a request that will finish at end. Its tokens
// count towards the fairness windows in proportion to how much of its service
// falls into each, as a live measurement of tokens served per window would see
// them (counting all of a 40 s request in the window it started in made the
// index measure the granularity of requests rather than the scheduler).
func (rec *recorder) started(req *request, now, end time.Duration) {
	u := &rec.users[req.user]
	u.waits = append(u.waits, now-req.enqueued)
	u.requests++
	u.tokens += req.actual()
	span := max(end-now, 1)
	var given int64
	for k := int(now / rec.window); k < len(u.windowTok); k++ {
		from, to := max(now, time.Duration(k)*rec.window), min(end, time.Duration(k+1)*rec.window)
		if from >= end {
			break
		}
		n := req.actual() * int64(to-from) / int64(span)
		if to == end {
			n = req.actual() - given // the rounding goes to the last window
		}
		u.windowTok[k] += n
		given += n
	}
}

func (rec *recorder) finished(req *request, now time.Duration) {
	rec.busy += now - req.started
	if !rec.users[req.user].spec.Interactive {
		rec.batchDone += req.actual()
	}
}

// end closes the books: slot time of requests still running, waits so far of
// requests still queued, and the last empty stretch of every queue. Sums are
// integers, so the order of the maps does not matter.
func (rec *recorder) end(now time.Duration, waiting, inflight map[*request]bool) {
	for req := range inflight {
		rec.busy += now - req.started
	}
	for req := range waiting {
		u := &rec.users[req.user]
		u.waits = append(u.waits, now-req.enqueued)
	}
	for i := range rec.users {
		u := &rec.users[i]
		if u.emptySince >= 0 {
			rec.markEmpty(u, u.emptySince, now)
		}
	}
}

func (rec *recorder) result(s Scenario, p Policy, now time.Duration) Result {
	res := Result{Scenario: s.Name, Policy: p, Duration: now}
	var total int64
	var interactive []time.Duration
	for _, u := range rec.users {
		total += u.tokens
		for _, w := range u.waits {
			if w > QueueTimeout {
				res.OverTimeout++
			}
		}
		if u.spec.Interactive {
			interactive = append(interactive, u.waits...)
		}
	}
	for _, u := range rec.users {
		ur := UserResult{
			Name: u.spec.Name, Weight: u.spec.Weight, Interactive: u.spec.Interactive,
			Requests: u.requests, Tokens: u.tokens, Wait: summarise(u.waits),
		}
		if total > 0 {
			ur.Share = float64(u.tokens) / float64(total)
		}
		res.Users = append(res.Users, ur)
	}
	res.Interactive = summarise(interactive)
	if now > 0 {
		res.Utilisation = float64(rec.busy) / (float64(rec.slots) * float64(now))
		res.BatchTokensPerSecond = float64(rec.batchDone) / now.Seconds()
	}
	res.Jain, res.JainWindows, res.Windows = rec.jain()
	return res
}

// jain averages the Jain index of weight-normalised service over the windows in
// which at least two users were backlogged throughout.
func (rec *recorder) jain() (mean float64, qualifying, windows int) {
	if len(rec.users) == 0 {
		return 0, 0, 0
	}
	windows = len(rec.users[0].emptyIn)
	var sum float64
	for k := range windows {
		var n int
		var s, s2 float64
		for _, u := range rec.users {
			if u.emptyIn[k] {
				continue
			}
			x := float64(u.windowTok[k]) / float64(u.spec.Weight)
			n++
			s += x
			s2 += x * x
		}
		if n < 2 || s2 == 0 {
			continue
		}
		sum += s * s / (float64(n) * s2)
		qualifying++
	}
	if qualifying > 0 {
		mean = sum / float64(qualifying)
	}
	return mean, qualifying, windows
}

// summarise returns nearest-rank percentiles.
func summarise(waits []time.Duration) Waits {
	if len(waits) == 0 {
		return Waits{}
	}
	s := slices.Clone(waits)
	slices.Sort(s)
	rank := func(p float64) time.Duration {
		i := int(p*float64(len(s))+0.999999) - 1
		return s[min(max(i, 0), len(s)-1)]
	}
	return Waits{N: len(s), P50: rank(0.50), P95: rank(0.95), Max: s[len(s)-1]}
}
