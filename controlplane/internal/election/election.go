package election

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
)

// ErrLost is returned (through Lost) when a leader could not renew its lease
// in time or found it taken: it must stop acting at once.
var ErrLost = errors.New("leadership lost")

// DefaultName is the election's row in leader_leases.
const DefaultName = "controlplane"

// Store is the database the lock lives in (store.Store).
type Store interface {
	EnsureLeaderTable(ctx context.Context) error
	ReadLeader(ctx context.Context, name string) (store.Leader, bool, error)
	ClaimLeader(ctx context.Context, name, holder string, seen *store.Leader) (store.Leader, bool, error)
	RenewLeader(ctx context.Context, name, holder string, token int64) (bool, error)
	ResignLeader(ctx context.Context, name, holder string, token int64) error
}

// Options configure an Elector.
type Options struct {
	// Name is the election's row; default DefaultName.
	Name string
	// Holder is this instance's advertise address: what a standby reports as
	// the leader's address.
	Holder string
	// TTL is how long a lease lasts without renewal; default 5s. The leader
	// renews every TTL/4 and a standby looks every TTL/10, so a standby takes
	// over at most 1.2 TTL after the leader's last renewal.
	TTL time.Duration
	// Logger and Registerer are optional.
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Elector campaigns for and holds the leadership of one election.
type Elector struct {
	st    Store
	opts  Options
	log   *slog.Logger
	epoch time.Time // monotonic reference of validUntil
	// validUntil is when this instance stops acting as leader unless it
	// renews, in nanoseconds since epoch; 0 when not leading.
	validUntil atomic.Int64
	token      atomic.Int64
	leader     atomic.Pointer[string]
	lost       chan struct{}
	lostOnce   sync.Once
	stop       context.CancelFunc
	done       chan struct{}

	isLeader    prometheus.Gauge
	transitions prometheus.Counter
}

// New returns an elector that has not campaigned yet.
func New(st Store, opts Options) (*Elector, error) {
	if opts.Name == "" {
		opts.Name = DefaultName
	}
	if opts.TTL <= 0 {
		opts.TTL = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	e := &Elector{
		st: st, opts: opts, log: opts.Logger, epoch: time.Now(), lost: make(chan struct{}),
		isLeader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mindrouter_cp_leader", Help: "1 while this control plane is the leader, 0 while it stands by.",
		}),
		transitions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mindrouter_cp_leader_elected_total", Help: "Times this control plane became the leader.",
		}),
	}
	none := ""
	e.leader.Store(&none)
	if opts.Registerer != nil {
		for _, c := range []prometheus.Collector{e.isLeader, e.transitions} {
			if err := opts.Registerer.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return e, nil
}

// Leading reports whether this instance may act as the leader now. It turns
// false by itself when the lease was not renewed in time, even before the
// renewal goroutine notices (a process that was paused stops acting the moment
// it resumes).
func (e *Elector) Leading() bool {
	until := e.validUntil.Load()
	return until != 0 && int64(time.Since(e.epoch)) < until
}

// Token is the fencing token of this instance's term; 0 before it leads.
func (e *Elector) Token() int64 { return e.token.Load() }

// Leader is the advertise address of the leader as last seen ("" when unknown).
func (e *Elector) Leader() string { return *e.leader.Load() }

// Lost is closed when this instance, having led, lost the leadership.
func (e *Elector) Lost() <-chan struct{} { return e.lost }

func (e *Elector) pollInterval() time.Duration  { return e.opts.TTL / 10 }
func (e *Elector) renewInterval() time.Duration { return e.opts.TTL / 4 }

// validity is how long after the start of a successful claim or renewal this
// instance may act: less than the TTL a standby waits, so that the old leader
// stops before the new one starts even if their clocks run a little apart.
func (e *Elector) validity() time.Duration { return e.opts.TTL * 9 / 10 }

// Campaign blocks until this instance is the leader (nil) or ctx ends (its
// error). Once it leads, a goroutine renews the lease until Resign.
func (e *Elector) Campaign(ctx context.Context) error {
	for {
		err := e.st.EnsureLeaderTable(ctx)
		if err == nil {
			break
		}
		e.log.Warn("leader election: cannot create its table; retrying", slog.Any("error", err))
		if !sleep(ctx, e.pollInterval()) {
			return ctx.Err()
		}
	}
	var (
		seen   *store.Leader
		seenAt time.Duration
	)
	for {
		row, ok, err := e.st.ReadLeader(ctx, e.opts.Name)
		now := time.Since(e.epoch)
		claim, prev := false, &row
		switch {
		case err != nil:
			e.log.Warn("leader election: cannot read the lease", slog.Any("error", err))
		case !ok:
			claim, prev = true, nil
		case row.Holder == "":
			claim = true
		case seen == nil || row.Version != seen.Version || row.Holder != seen.Holder:
			if seen == nil || row.Holder != seen.Holder {
				e.log.Info("standing by", slog.String("leader", row.Holder), slog.Duration("ttl", e.opts.TTL))
			}
			r := row
			seen, seenAt = &r, now
			e.leader.Store(&r.Holder)
		case now-seenAt >= e.opts.TTL:
			e.log.Warn("leader stopped renewing its lease; taking over", slog.String("leader", row.Holder),
				slog.Duration("silent_for", now-seenAt))
			claim = true
		}
		if claim {
			won, err := e.claim(ctx, prev)
			if err != nil {
				e.log.Warn("leader election: claim failed", slog.Any("error", err))
			}
			if won {
				return nil
			}
		}
		if !sleep(ctx, e.pollInterval()) {
			return ctx.Err()
		}
	}
}

func (e *Elector) claim(ctx context.Context, seen *store.Leader) (bool, error) {
	start := time.Since(e.epoch)
	row, won, err := e.st.ClaimLeader(ctx, e.opts.Name, e.opts.Holder, seen)
	if err != nil || !won {
		return false, err
	}
	e.token.Store(row.Token)
	e.validUntil.Store(int64(start + e.validity()))
	e.leader.Store(&e.opts.Holder)
	e.isLeader.Set(1)
	e.transitions.Inc()
	e.log.Info("elected leader", slog.String("holder", e.opts.Holder), slog.Int64("fencing_token", row.Token))
	hctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	e.stop, e.done = stop, make(chan struct{})
	go func() {
		defer close(e.done)
		e.hold(hctx)
	}()
	return true, nil
}

// hold renews the lease every renewInterval until ctx ends or the lease is
// lost (then Lost is closed).
func (e *Elector) hold(ctx context.Context) {
	t := time.NewTicker(e.renewInterval())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		start := time.Since(e.epoch)
		until := time.Duration(e.validUntil.Load())
		if start >= until {
			e.lose("the lease ran out before it could be renewed")
			return
		}
		// A renewal that cannot finish while the lease is valid is worthless.
		rctx, cancel := context.WithTimeout(ctx, until-start)
		ok, err := e.st.RenewLeader(rctx, e.opts.Name, e.opts.Holder, e.token.Load())
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			e.log.Warn("leader election: renewal failed; retrying", slog.Any("error", err))
			if !e.Leading() {
				e.lose("the lease ran out while the database did not answer")
				return
			}
		case !ok:
			e.lose("another control plane holds the lease")
			return
		default:
			e.validUntil.Store(int64(start + e.validity()))
		}
	}
}

func (e *Elector) lose(why string) {
	e.validUntil.Store(0)
	e.isLeader.Set(0)
	e.lostOnce.Do(func() {
		e.log.Error("leadership lost; this control plane stops acting", slog.String("reason", why))
		close(e.lost)
	})
}

// Resign stops renewing and, if this instance still leads, hands the lease
// back so that a standby takes over at once. Call it after the last write.
func (e *Elector) Resign(ctx context.Context) {
	if e.stop == nil {
		return
	}
	e.stop()
	<-e.done
	if !e.Leading() {
		return
	}
	e.validUntil.Store(0)
	e.isLeader.Set(0)
	if err := e.st.ResignLeader(ctx, e.opts.Name, e.opts.Holder, e.token.Load()); err != nil {
		e.log.Warn("leader election: resign failed; a standby takes over when the lease runs out", slog.Any("error", err))
		return
	}
	e.log.Info("resigned leadership")
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
