package admission

import (
	"sync"
	"time"

	"github.com/mindrouter/mindrouter/controlplane/internal/scheduler"
	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

// DefaultDecisionLog is the default number of decisions kept.
const DefaultDecisionLog = 1000

// Decision records why a request went where it went.
type Decision struct {
	RequestID string
	At        time.Time
	// Model is the name the client asked for.
	Model    string
	UserID   int64
	Username string
	// Weight and Deficit are the user's fair-share weight and credit (tokens) when
	// the slot was granted.
	Weight  int
	Deficit int64
	// Attempt is 1 for the first try; retries count up.
	Attempt int
	// QueuePosition is the place in the queue at enqueue (0: placed at once).
	QueuePosition int
	Waited        time.Duration
	BackendID     int64
	Backend       string
	// Candidates are every backend considered, the chosen one included, in the
	// registry's order; those a hard filter removed come last.
	Candidates []CandidateScore
}

// CandidateScore is one backend's verdict in a Decision.
type CandidateScore struct {
	BackendID int64
	Backend   string
	Score
}

// DecisionFilter selects decisions; zero fields select everything.
type DecisionFilter struct {
	UserID int64
	Model  string
	// Limit caps the number returned (0: all kept).
	Limit int
}

// decisionLog is a bounded ring of the latest decisions. Recording reuses the
// storage of the decision it overwrites, so a full ring records without
// allocating once candidate lists have reached their usual length.
type decisionLog struct {
	mu   sync.Mutex
	ring []Decision
	next int // slot the next decision goes to
	n    int // decisions held
}

func newDecisionLog(size int) *decisionLog {
	return &decisionLog{ring: make([]Decision, size)}
}

// slot returns the storage of the next decision, cleared but for its slices'
// capacity, with the log locked; the caller fills it and calls commit.
func (l *decisionLog) slot() *Decision {
	l.mu.Lock()
	d := &l.ring[l.next]
	cands := d.Candidates[:0]
	*d = Decision{Candidates: cands}
	return d
}

// commit publishes the decision filled after slot and unlocks the log.
func (l *decisionLog) commit() {
	l.next = (l.next + 1) % len(l.ring)
	l.n = min(l.n+1, len(l.ring))
	l.mu.Unlock()
}

// addCandidate appends a candidate to d, reusing the storage of the one it
// overwrites (its Components too).
func (d *Decision) addCandidate(c *Candidate, sc *Score) {
	n := len(d.Candidates)
	if n < cap(d.Candidates) {
		d.Candidates = d.Candidates[:n+1]
	} else {
		d.Candidates = append(d.Candidates, CandidateScore{})
	}
	cs := &d.Candidates[n]
	comps := append(cs.Components[:0], sc.Components...)
	*cs = CandidateScore{BackendID: c.BackendID, Backend: c.BackendName, Score: *sc}
	cs.Components = comps
}

// list returns copies of the decisions that match f, newest first.
func (l *decisionLog) list(f DecisionFilter) []Decision {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Decision
	for k := 1; k <= l.n; k++ {
		if f.Limit > 0 && len(out) >= f.Limit {
			break
		}
		d := &l.ring[(l.next-k+len(l.ring))%len(l.ring)]
		if (f.UserID != 0 && d.UserID != f.UserID) || (f.Model != "" && d.Model != f.Model) {
			continue
		}
		c := *d
		c.Candidates = make([]CandidateScore, len(d.Candidates))
		for i, cs := range d.Candidates {
			cs.Components = append([]Component(nil), cs.Components...)
			c.Candidates[i] = cs
		}
		out = append(out, c)
	}
	return out
}

// record logs the decision that placed a granted request.
func (s *Server) record(req *controlplanev1.AdmitRequest, p Principal, g scheduler.Grant, pl *plan, now time.Time) {
	s.names.seeUser(p.UserID, p.Username)
	s.names.seeBackend(pl.chosen)
	d := s.decisions.slot()
	d.RequestID = req.GetRequestId()
	d.At = now
	d.Model = req.GetModel()
	d.UserID, d.Username = p.UserID, p.Username
	d.Weight, d.Deficit = max(p.Weight, 1), g.Deficit
	d.Attempt = int(req.GetAttempt())
	d.QueuePosition, d.Waited = g.Position, g.Waited
	d.BackendID, d.Backend = pl.chosen.BackendID, pl.chosen.BackendName
	for i := range pl.cands {
		if i < len(pl.scores) {
			d.addCandidate(&pl.cands[i], &pl.scores[i])
		}
	}
	for i := range pl.filtered {
		f := &pl.filtered[i]
		d.addCandidate(&f.cand, &Score{ExcludedReason: f.reason})
	}
	s.decisions.commit()
}

// Decisions returns the latest scheduling decisions that match f, newest first.
func (s *Server) Decisions(f DecisionFilter) []Decision { return s.decisions.list(f) }
