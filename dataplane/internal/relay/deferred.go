package relay

import (
	"context"
	"sync"
)

// Deferred holds the releases of one client request that wait for its reply.
// A lease that served the client successfully is settled only after the
// answer has been written, so that the client never waits for the control
// plane's Release round trip; leases that failed are still released at once,
// as they free a backend slot that a retry may need.
type Deferred struct {
	mu    sync.Mutex
	sends []func()
}

type deferredKey struct{}

// DeferReleases returns a context in which the relay defers the releases of
// successful leases to d.Send. The caller must call d.Send exactly once, after
// the request's handler has returned, or those leases stay unsettled until the
// control plane expires them.
func DeferReleases(ctx context.Context) (context.Context, *Deferred) {
	d := &Deferred{}
	return context.WithValue(ctx, deferredKey{}, d), d
}

func deferredFrom(ctx context.Context) *Deferred {
	d, _ := ctx.Value(deferredKey{}).(*Deferred)
	return d
}

func (d *Deferred) add(send func()) {
	d.mu.Lock()
	d.sends = append(d.sends, send)
	d.mu.Unlock()
}

// Pending reports whether a release is waiting for Send.
func (d *Deferred) Pending() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.sends) > 0
}

// Send sends the deferred releases, one after the other, and forgets them.
func (d *Deferred) Send() {
	d.mu.Lock()
	sends := d.sends
	d.sends = nil
	d.mu.Unlock()
	for _, send := range sends {
		send()
	}
}
