package registry

import (
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/controlplane/internal/health"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)} }

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// inFlight is a settable count of leases per backend.
type inFlight struct{ m sync.Map }

func (f *inFlight) Set(id int64, n int) { f.m.Store(id, n) }

func (f *inFlight) Get(id int64) int {
	if v, ok := f.m.Load(id); ok {
		return v.(int)
	}
	return 0
}

// fixture is a registry over a fake store with a real prober.
type fixture struct {
	st       *fakeStore
	r        *Registry
	clock    *clock
	inFlight *inFlight
	reg      *prometheus.Registry
}

func newFixture(t *testing.T, opts Options, seed func(st *fakeStore)) *fixture {
	t.Helper()
	f := &fixture{st: newFakeStore(), clock: newClock(), inFlight: &inFlight{}, reg: prometheus.NewRegistry()}
	if seed != nil {
		seed(f.st)
	}
	opts.Now = f.clock.Now
	opts.Registerer = f.reg
	opts.InFlight = f.inFlight.Get
	if opts.Prober == nil {
		p := health.NewProber(nil, nil)
		p.SetTimeouts(2*time.Second, 2*time.Second)
		opts.Prober = p
	}
	f.r = New(f.st, opts)
	require.NoError(t, f.r.Load(t.Context()))
	return f
}

// gauge reads one gauge series from the fixture's Prometheus registry.
func (f *fixture) gauge(t *testing.T, name, label, value string) float64 {
	t.Helper()
	mfs, err := f.reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return -1
}

// counter reads one counter series with exactly the given labels; -1 when absent.
func (f *fixture) counter(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := f.reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			if maps.Equal(got, labels) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return -1
}

// signals counts the signals a subscription receives.
type signals struct{ ch <-chan struct{} }

// drained reports whether a signal is pending, consuming it.
func (s *signals) drained() bool {
	select {
	case <-s.ch:
		return true
	default:
		return false
	}
}

func subscribe(t *testing.T, r *Registry) *signals {
	ch, cancel := r.Subscribe()
	t.Cleanup(cancel)
	return &signals{ch: ch}
}
