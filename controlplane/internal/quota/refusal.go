package quota

import (
	"fmt"
	"time"
)

type reason uint8

const (
	reasonQuota reason = iota
	reasonRate
	reasonKeyRate
	reasonConcurrency
)

// refusal is what check found; the message is built after the lock is released.
type refusal struct {
	reason                 reason
	limit, current         int64
	used, reserved, tokens int64
	after                  time.Duration
	// resetIn is the time left in the period (quota refusals).
	resetIn time.Duration
}

// refuse counts a refusal and builds its error.
func (m *Manager) refuse(r refusal) error {
	after := ceilSecond(r.after)
	var e *LimitError
	switch r.reason {
	case reasonQuota:
		m.metrics.refusedQuota.Inc()
		e = &LimitError{err: ErrQuotaExhausted, after: after, msg: quotaMessage(r)}
	case reasonRate:
		m.metrics.refusedRate.Inc()
		e = &LimitError{err: ErrRateLimited, after: after, msg: fmt.Sprintf(
			"Rate limit exceeded: %d requests per minute (current: %d)", r.limit, r.current)}
	case reasonKeyRate:
		m.metrics.refusedRate.Inc()
		e = &LimitError{err: ErrRateLimited, after: after, msg: fmt.Sprintf(
			"Rate limit exceeded: %d requests per minute for this API key (current: %d)", r.limit, r.current)}
	default:
		m.metrics.refusedConcurrency.Inc()
		e = &LimitError{err: ErrConcurrencyLimited, after: after, msg: fmt.Sprintf(
			"Too many concurrent requests: %d in flight or queued (limit %d)", r.current, r.limit)}
	}
	return e
}

func quotaMessage(r refusal) string {
	switch {
	case r.tokens > r.limit:
		return fmt.Sprintf("Token quota exceeded: this request reserves %d tokens (prompt estimate plus output allowance), "+
			"more than the whole budget of %d tokens per period; lower max_tokens", r.tokens, r.limit)
	case r.used+r.tokens <= r.limit:
		return fmt.Sprintf("Token quota exceeded: %d of %d tokens used this period and %d held by requests in flight; "+
			"this request reserves %d (prompt estimate plus output allowance)", r.used, r.limit, r.reserved, r.tokens)
	}
	return fmt.Sprintf("Token quota exceeded: %d of %d tokens used this period; this request reserves %d "+
		"(prompt estimate plus output allowance); the period resets in %s", r.used, r.limit, r.tokens, human(r.resetIn))
}

// ceilSecond rounds a Retry-After up to whole seconds, at least one, as the
// HTTP header carries them.
func ceilSecond(d time.Duration) time.Duration {
	if d <= time.Second {
		return time.Second
	}
	return (d + time.Second - 1).Truncate(time.Second)
}

// human writes a duration to the second, with days when it is that long.
func human(d time.Duration) string {
	d = ceilSecond(d)
	if d < 24*time.Hour {
		return d.String()
	}
	days := d / (24 * time.Hour)
	return fmt.Sprintf("%dd%s", days, (d - days*24*time.Hour).Truncate(time.Minute))
}
