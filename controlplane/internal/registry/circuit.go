package registry

import (
	"log/slog"
	"sync"
	"time"
)

// CircuitState is the state of a backend's circuit breaker.
type CircuitState string

// The circuit states. Closed lets every request through; open lets none
// through until its period ends; half-open lets one trial request through,
// whose outcome closes or re-opens the circuit.
const (
	CircuitClosed   CircuitState = "closed"
	CircuitOpen     CircuitState = "open"
	CircuitHalfOpen CircuitState = "half_open"
)

// Reasons a backend is not used, as decisions record them.
const (
	ReasonCircuitOpen   = "circuit open"
	ReasonTrialInFlight = "circuit half-open: trial request in flight"
)

// breakerConfig is the breaker part of Options.
type breakerConfig struct {
	threshold    int
	openFor      time.Duration
	maxOpenFor   time.Duration
	trialTimeout time.Duration
	alpha        float64
}

// live is what the registry learns about one backend from its live traffic:
// the circuit breaker and the latency and throughput averages. It has its own
// lock so that Observe and the hot-path reads never take the registry's; when
// both are needed, r.mu is taken first.
type live struct {
	mu sync.Mutex
	// state is the stored state; an open circuit whose period has ended is
	// half-open (effective), and becomes so in state at the next advance.
	state CircuitState
	// failures counts live failures since the last success.
	failures  int
	openUntil time.Time
	// openFor is the current open period: CircuitOpenFor, doubled by each
	// failed trial up to CircuitMaxOpenFor, reset when the circuit closes.
	openFor time.Duration
	// trialSince is when the half-open trial was handed out; zero when none
	// is in flight.
	trialSince time.Time

	latency, ttft, throughput ewma
}

func newLive() *live { return &live{state: CircuitClosed} }

// ewma is an exponentially weighted moving average; the first sample is
// taken as it is.
type ewma struct {
	v  float64
	ok bool
}

func (e *ewma) add(x, alpha float64) {
	if !e.ok {
		e.v, e.ok = x, true
		return
	}
	e.v = alpha*x + (1-alpha)*e.v
}

// effectiveLocked is the state at now, without changing anything.
func (l *live) effectiveLocked(now time.Time) CircuitState {
	if l.state == CircuitOpen && !now.Before(l.openUntil) {
		return CircuitHalfOpen
	}
	return l.state
}

// advanceLocked stores the half-open state of an open circuit whose period
// has ended; it reports whether it did.
func (l *live) advanceLocked(now time.Time) bool {
	if l.effectiveLocked(now) == CircuitHalfOpen && l.state == CircuitOpen {
		l.state, l.trialSince = CircuitHalfOpen, time.Time{}
		return true
	}
	return false
}

// openLocked opens the circuit for d.
func (l *live) openLocked(now time.Time, d time.Duration) {
	l.state, l.openFor, l.openUntil, l.trialSince = CircuitOpen, d, now.Add(d), time.Time{}
}

// closeLocked closes the circuit and forgets its history.
func (l *live) closeLocked() {
	l.state, l.failures, l.openFor, l.openUntil, l.trialSince = CircuitClosed, 0, 0, time.Time{}, time.Time{}
}

// peek returns the effective state, the live failures and, when open, how
// long it stays open.
func (l *live) peek(now time.Time) (CircuitState, int, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.effectiveLocked(now)
	var left time.Duration
	if s == CircuitOpen {
		left = l.openUntil.Sub(now)
	}
	return s, l.failures, left
}

// acquire lets a request through the breaker: always when closed, never
// when open, and when half-open only if no trial is in flight (a trial older
// than trialTimeout no longer counts), in which case this request becomes
// the trial. why says why a request may not pass.
func (l *live) acquire(now time.Time, trialTimeout time.Duration) (ok, trial bool, why string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.advanceLocked(now)
	switch l.state {
	case CircuitClosed:
		return true, false, ""
	case CircuitOpen:
		return false, false, ReasonCircuitOpen
	}
	if !l.trialSince.IsZero() && now.Sub(l.trialSince) < trialTimeout {
		return false, false, ReasonTrialInFlight
	}
	l.trialSince = now
	return true, true, ""
}

// abandon frees the half-open trial without a verdict.
func (l *live) abandon(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.advanceLocked(now)
	if l.state == CircuitHalfOpen {
		l.trialSince = time.Time{}
	}
}

// reset closes the circuit (an administrator put the backend back in service).
func (l *live) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closeLocked()
}

// transition is a change of circuit state.
type transition struct {
	from, to CircuitState
	failures int
	openFor  time.Duration
}

// observe records one outcome and returns the transition it caused, if any
// (from == to when none).
func (l *live) observe(now time.Time, o Observation, cfg breakerConfig) transition {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.advanceLocked(now)
	from := l.state
	if !o.Failure {
		l.record(o, cfg.alpha)
		switch l.state {
		case CircuitClosed, CircuitHalfOpen:
			// An open circuit waits out its period whatever answers arrive from
			// requests sent before it opened.
			l.closeLocked()
		}
		return transition{from: from, to: l.state}
	}
	l.failures++
	switch {
	case l.state == CircuitClosed && l.failures >= cfg.threshold:
		l.openLocked(now, cfg.openFor)
	case l.state == CircuitHalfOpen:
		l.openLocked(now, min(max(2*l.openFor, cfg.openFor), cfg.maxOpenFor))
	}
	return transition{from: from, to: l.state, failures: l.failures, openFor: l.openFor}
}

// record feeds a successful request into the averages.
func (l *live) record(o Observation, alpha float64) {
	if o.Duration > 0 {
		l.latency.add(o.Duration.Seconds(), alpha)
	}
	if o.TTFT > 0 {
		l.ttft.add(o.TTFT.Seconds(), alpha)
	}
	if tp := throughput(o); tp > 0 {
		l.throughput.add(tp, alpha)
	}
}

// throughput is the generation speed of one request in tokens per second:
// the tokens after the first over the time after the first byte when both
// are known, else all tokens over the whole duration; 0 without tokens.
func throughput(o Observation) float64 {
	n, d := o.CompletionTokens, o.Duration
	if n <= 0 || d <= 0 {
		return 0
	}
	if o.TTFT > 0 && o.TTFT < d && n > 1 {
		return float64(n-1) / (d - o.TTFT).Seconds()
	}
	return float64(n) / d.Seconds()
}

// stats reads the averages and the breaker.
func (l *live) stats(now time.Time) LiveStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := LiveStats{Circuit: l.effectiveLocked(now), LiveFailures: l.failures, Throughput: l.throughput.v}
	if s.Circuit == CircuitOpen {
		s.OpenUntil = l.openUntil
	}
	if l.latency.ok {
		s.LatencyEMA = seconds(l.latency.v)
	}
	if l.ttft.ok {
		s.TTFTEMA = seconds(l.ttft.v)
	}
	return s
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// liveOf returns the live state of a backend from the current view.
func (r *Registry) liveOf(backendID int64) *live { return r.view.Load().live[backendID] }

// Circuit returns the state of a backend's circuit breaker: CircuitClosed,
// CircuitOpen or CircuitHalfOpen; "" for an unknown backend.
func (r *Registry) Circuit(backendID int64) CircuitState {
	lv := r.liveOf(backendID)
	if lv == nil {
		return ""
	}
	s, _, _ := lv.peek(r.now())
	return s
}

// AcquireCircuit asks a backend's circuit breaker to let one request through
// now; call it for the backend chosen for a request, just before granting it
// (Choose does). It reports ok false while the circuit is open, or while it is
// half-open and its one trial request is in flight; then choose another
// backend. With the circuit half-open, the request it lets through is the
// trial (trial true): the next Observe for the backend closes or re-opens the
// circuit, and a trial that ends without an outcome should be given back with
// AbandonTrial (otherwise another trial is allowed CircuitTrialTimeout after
// it started). A closed circuit lets everything through and holds nothing, so
// a caller that does not send the request owes nothing.
func (r *Registry) AcquireCircuit(backendID int64) (ok, trial bool) {
	ok, trial, _ = r.acquireCircuit(backendID)
	return ok, trial
}

func (r *Registry) acquireCircuit(backendID int64) (ok, trial bool, why string) {
	lv := r.liveOf(backendID)
	if lv == nil {
		return false, false, "backend removed"
	}
	return lv.acquire(r.now(), r.opts.CircuitTrialTimeout)
}

// AbandonTrial gives back the half-open trial of a backend that AcquireCircuit
// handed out (trial true) when the request ended without saying anything
// about the backend: the client went away, the lease was lost, the slot was
// never used. Another request may then be the trial at once.
func (r *Registry) AbandonTrial(backendID int64) {
	if lv := r.liveOf(backendID); lv != nil {
		lv.abandon(r.now())
	}
}

// advanceCircuits stores the half-open state of circuits whose open period
// has ended and tells subscribers, so that waiting requests are offered the
// backend again. RunHealth calls it on every fast poll.
func (r *Registry) advanceCircuits() {
	now := r.now()
	var changed []int64
	for id, lv := range r.view.Load().live {
		lv.mu.Lock()
		if lv.advanceLocked(now) {
			changed = append(changed, id)
		}
		lv.mu.Unlock()
	}
	if len(changed) == 0 {
		return
	}
	for _, id := range changed {
		r.log.Info("backend circuit half-open", slog.Int64("backend_id", id))
	}
	r.notify()
}
