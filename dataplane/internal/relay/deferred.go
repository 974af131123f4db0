package relay

import (
	"sync"
)

// Deferred holds the releases of one client request that wait for its reply
// (Call.Deferred). A lease that served the client successfully is settled
// only after the answer has been written, so that the client never waits for
// the control plane's Release round trip; leases that failed are still
// released at once, as they free a backend slot that a retry may need. The
// zero value is ready to use.
type Deferred struct {
	mu    sync.Mutex
	sends []func()
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
