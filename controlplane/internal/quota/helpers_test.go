package quota

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// harness is a manager on a settable clock with its own registry.
type harness struct {
	m     *Manager
	clock *clock
	reg   *prometheus.Registry
	seq   int
}

func newHarness(t *testing.T, opts Options) *harness {
	t.Helper()
	h := &harness{clock: newClock(), reg: prometheus.NewRegistry()}
	opts.Now = h.clock.Now
	opts.Registerer = h.reg
	m, err := New(opts)
	require.NoError(t, err)
	h.m = m
	return h
}

func principal(userID int64, budget int64, rpm int) Account {
	return Account{UserID: userID, APIKeyID: userID * 10, TokenBudget: budget, RPMLimit: rpm}
}

// reserve reserves tokens under a fresh request id and returns the id.
func (h *harness) reserve(p Account, tokens int64) (string, error) {
	h.seq++
	id := fmt.Sprintf("req-%d", h.seq)
	return id, h.m.Reserve(context.Background(), p, Reservation{RequestID: id, Tokens: tokens})
}

// settle settles a granted request with the given usage.
func (h *harness) settle(p Account, id string, reserved, prompt, completion int64) {
	h.m.Settle(p, Settlement{
		Reservation:      Reservation{RequestID: id, Tokens: reserved},
		Granted:          true,
		Succeeded:        true,
		PromptTokens:     prompt,
		CompletionTokens: completion,
	})
}

// metric returns the value of a counter or gauge, with the given label if any.
func (h *harness) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	fams, err := h.reg.Gather()
	require.NoError(t, err)
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, mt := range f.GetMetric() {
			if len(labels) == 2 && !hasLabel(mt.GetLabel(), labels[0], labels[1]) {
				continue
			}
			if c := mt.GetCounter(); c != nil {
				return c.GetValue()
			}
			return mt.GetGauge().GetValue()
		}
	}
	return 0
}

func hasLabel[L interface {
	GetName() string
	GetValue() string
}](ls []L, name, value string) bool {
	for _, l := range ls {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}

// requireLimit checks that err is a refusal wrapping want with the Retry-After.
func requireLimit(t *testing.T, err error, want error, after time.Duration) {
	t.Helper()
	require.ErrorIs(t, err, want)
	var ra interface{ RetryAfter() time.Duration }
	require.ErrorAs(t, err, &ra)
	require.Equal(t, after, ra.RetryAfter())
}
