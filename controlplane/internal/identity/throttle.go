package identity

import (
	"sync"
	"time"
)

// maxThrottleEntries bounds the remembered (username, address) pairs; when it
// is reached, windows that have ended are dropped first, then the oldest.
const maxThrottleEntries = 100_000

// throttle counts failed sign-ins per key in fixed windows: after limit
// failures within window, attempts are refused until the window ends.
type throttle struct {
	limit  int
	window time.Duration

	mu      sync.Mutex
	entries map[string]*throttleEntry
}

type throttleEntry struct {
	start    time.Time
	failures int
}

func newThrottle(limit int, window time.Duration) *throttle {
	return &throttle{limit: limit, window: window, entries: map[string]*throttleEntry{}}
}

// blocked reports how long attempts under key are still refused (0: allowed).
func (t *throttle) blocked(key string, now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.entries[key]
	if !ok {
		return 0
	}
	end := e.start.Add(t.window)
	if !now.Before(end) {
		delete(t.entries, key)
		return 0
	}
	if e.failures < t.limit {
		return 0
	}
	return end.Sub(now)
}

// fail counts a failed attempt under key.
func (t *throttle) fail(key string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.entries[key]
	if ok && !now.Before(e.start.Add(t.window)) {
		ok = false
	}
	if !ok {
		if len(t.entries) >= maxThrottleEntries {
			t.shrink(now)
		}
		e = &throttleEntry{start: now}
		t.entries[key] = e
	}
	e.failures++
}

// shrink drops ended windows, and the oldest entry if none had ended.
func (t *throttle) shrink(now time.Time) {
	var oldestKey string
	var oldest time.Time
	for k, e := range t.entries {
		if !now.Before(e.start.Add(t.window)) {
			delete(t.entries, k)
			continue
		}
		if oldestKey == "" || e.start.Before(oldest) {
			oldestKey, oldest = k, e.start
		}
	}
	if len(t.entries) >= maxThrottleEntries {
		delete(t.entries, oldestKey)
	}
}
