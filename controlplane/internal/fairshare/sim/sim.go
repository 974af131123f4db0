package sim

import (
	"container/heap"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/mindrouter/mindrouter/controlplane/internal/fairshare"
)

// Policy names a scheduling policy the simulation can run.
type Policy string

// The policies compared.
const (
	// WDRR is fairshare.Pool with fairshare.DefaultParams.
	WDRR Policy = "WDRR"
	// FIFO serves requests in arrival order: the baseline.
	FIFO Policy = "FIFO"
	// InteractiveFirst is a reference that no real scheduler can be: it knows which
	// users are interactive and always serves them first (FIFO within each class).
	// Without preemption it is the best possible interactive wait.
	InteractiveFirst Policy = "interactive-first (oracle)"
)

// queue is what the simulation needs from a policy.
type queue interface {
	Enqueue(r fairshare.Request) (int, error)
	Next() (fairshare.Request, bool)
	Settle(user int64, estimated, actual int64)
}

// epoch is the simulated clock's origin; any fixed instant works.
var epoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

type request struct {
	id       string
	user     int
	prompt   int64
	output   int64
	estimate int64
	enqueued time.Duration
	started  time.Duration
}

func (r *request) actual() int64 { return r.prompt + r.output }

type eventKind int

const (
	arrive eventKind = iota // an interactive user sends its next request
	finish                  // a request completes and frees its slot
)

type event struct {
	at   time.Duration
	seq  uint64 // ties are processed in scheduling order
	kind eventKind
	user int
	req  *request
}

type events []*event

func (h events) Len() int { return len(h) }
func (h events) Less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].seq < h[j].seq
}
func (h events) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *events) Push(x any)   { *h = append(*h, x.(*event)) }
func (h *events) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// run is one simulation in progress.
type run struct {
	cluster  Cluster
	scenario Scenario
	q        queue
	now      time.Duration
	evs      events
	seq      uint64
	rngs     []*rand.Rand // one stream per user, so workloads do not depend on each other
	free     int
	nextID   int
	queued   []int
	rec      *recorder
	inflight map[*request]bool
	waiting  map[*request]bool
}

// Run simulates scenario s on cluster c under policy p with the default
// fair-share parameters. The same arguments always give the same Result.
func Run(c Cluster, s Scenario, p Policy, seed uint64) (Result, error) {
	return RunWith(c, s, p, fairshare.DefaultParams(), seed)
}

// RunWith is Run with explicit fair-share parameters (ignored by FIFO).
func RunWith(c Cluster, s Scenario, p Policy, prm fairshare.Params, seed uint64) (Result, error) {
	r := &run{cluster: c, scenario: s, free: c.Slots(), queued: make([]int, len(s.Users)),
		inflight: map[*request]bool{}, waiting: map[*request]bool{}}
	switch p {
	case WDRR:
		prm.MaxQueuePerModel = max(prm.MaxQueuePerModel, 64*len(s.Users))
		pool, err := fairshare.NewPool(prm, func() time.Time { return epoch.Add(r.now) })
		if err != nil {
			return Result{}, fmt.Errorf("simulate %s: %w", s.Name, err)
		}
		r.q = pool
	case FIFO:
		r.q = &fifo{}
	case InteractiveFirst:
		o := &oracle{interactive: map[int64]bool{}}
		for i, u := range s.Users {
			o.interactive[int64(i)] = u.Interactive
		}
		r.q = o
	default:
		return Result{}, fmt.Errorf("simulate %s: unknown policy %q", s.Name, p)
	}
	for i := range s.Users {
		r.rngs = append(r.rngs, newRand(seed, i))
	}
	r.rec = newRecorder(s, c)
	if err := r.loop(); err != nil {
		return Result{}, fmt.Errorf("simulate %s under %s: %w", s.Name, p, err)
	}
	return r.rec.result(s, p, r.now), nil
}

func (r *run) loop() error {
	for i, u := range r.scenario.Users {
		if u.Interactive {
			r.schedule(r.think(i), arrive, i, nil)
		} else if err := r.refill(i); err != nil {
			return err
		}
	}
	if err := r.dispatch(); err != nil {
		return err
	}
	for r.evs.Len() > 0 {
		ev := heap.Pop(&r.evs).(*event)
		if ev.at > r.scenario.Duration {
			break
		}
		r.now = ev.at
		switch ev.kind {
		case arrive:
			if err := r.submit(ev.user); err != nil {
				return err
			}
		case finish:
			r.free++
			delete(r.inflight, ev.req)
			r.q.Settle(int64(ev.user), ev.req.estimate, ev.req.actual())
			r.rec.finished(ev.req, r.now)
			if r.scenario.Users[ev.user].Interactive {
				r.schedule(r.now+r.think(ev.user), arrive, ev.user, nil)
			}
		}
		if err := r.dispatch(); err != nil {
			return err
		}
	}
	r.now = r.scenario.Duration
	r.rec.end(r.now, r.waiting, r.inflight)
	return nil
}

func (r *run) schedule(at time.Duration, kind eventKind, user int, req *request) {
	r.seq++
	heap.Push(&r.evs, &event{at: at, seq: r.seq, kind: kind, user: user, req: req})
}

func (r *run) think(user int) time.Duration {
	mean := r.scenario.Users[user].Think.Seconds()
	return time.Duration(r.rngs[user].ExpFloat64() * mean * float64(time.Second))
}

func draw(rng *rand.Rand, x Range) int64 {
	if x.Max <= x.Min {
		return x.Min
	}
	return x.Min + rng.Int64N(x.Max-x.Min+1)
}

// submit queues a new request of user.
func (r *run) submit(user int) error {
	spec, rng := r.scenario.Users[user], r.rngs[user]
	r.nextID++
	req := &request{
		id:       strconv.Itoa(r.nextID),
		user:     user,
		prompt:   draw(rng, spec.Prompt),
		output:   draw(rng, spec.Output),
		enqueued: r.now,
	}
	req.output = min(req.output, spec.MaxTokens)
	req.estimate = req.prompt + spec.MaxTokens
	if _, err := r.q.Enqueue(fairshare.Request{
		ID: req.id, User: int64(user), Weight: spec.Weight, Cost: req.estimate,
		Enqueued: epoch.Add(r.now), Payload: req,
	}); err != nil {
		return err
	}
	r.queued[user]++
	r.waiting[req] = true
	r.rec.queueChanged(user, r.queued[user], r.now)
	return nil
}

// refill keeps an automated user's queue at its depth.
func (r *run) refill(user int) error {
	for r.queued[user] < r.scenario.Users[user].Depth {
		if err := r.submit(user); err != nil {
			return err
		}
	}
	return nil
}

// dispatch fills free slots, as the scheduler does whenever a slot frees or a
// request arrives.
func (r *run) dispatch() error {
	for r.free > 0 {
		fr, ok := r.q.Next()
		if !ok {
			return nil
		}
		req := fr.Payload.(*request)
		r.free--
		r.queued[req.user]--
		req.started = r.now
		delete(r.waiting, req)
		r.inflight[req] = true
		service := float64(req.prompt)/r.cluster.PrefillTPS + float64(req.output)/r.cluster.DecodeTPS
		end := r.now + time.Duration(service*float64(time.Second))
		r.rec.started(req, r.now, end)
		r.rec.queueChanged(req.user, r.queued[req.user], r.now)
		r.schedule(end, finish, req.user, req)
		if !r.scenario.Users[req.user].Interactive {
			if err := r.refill(req.user); err != nil {
				return err
			}
		}
	}
	return nil
}

// fifo is the baseline: one queue in arrival order, blind to users and costs.
type fifo struct {
	items []fairshare.Request
	head  int
}

func (f *fifo) Enqueue(r fairshare.Request) (int, error) {
	f.items = append(f.items, r)
	return len(f.items) - f.head, nil
}

func (f *fifo) Next() (fairshare.Request, bool) {
	if f.head == len(f.items) {
		return fairshare.Request{}, false
	}
	r := f.items[f.head]
	f.items[f.head] = fairshare.Request{}
	f.head++
	if f.head > 1024 && f.head*2 > len(f.items) {
		f.items = append(f.items[:0], f.items[f.head:]...)
		f.head = 0
	}
	return r, true
}

func (f *fifo) Settle(int64, int64, int64) {}

// newRand returns user i's random stream for seed.
func newRand(seed uint64, i int) *rand.Rand { return rand.New(rand.NewPCG(seed, uint64(i)+1)) }

// oracle serves interactive users' requests strictly before the others'.
type oracle struct {
	interactive map[int64]bool
	hi, lo      fifo
}

func (o *oracle) Enqueue(r fairshare.Request) (int, error) {
	if o.interactive[r.User] {
		return o.hi.Enqueue(r)
	}
	n, err := o.lo.Enqueue(r)
	return n + len(o.hi.items) - o.hi.head, err
}

func (o *oracle) Next() (fairshare.Request, bool) {
	if r, ok := o.hi.Next(); ok {
		return r, true
	}
	return o.lo.Next()
}

func (o *oracle) Settle(int64, int64, int64) {}
