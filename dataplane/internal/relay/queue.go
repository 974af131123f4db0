package relay

import (
	"context"
	"time"
)

// QueueUpdate is a waiting request's place in its model's queue, as the
// control plane's scheduler estimates it.
type QueueUpdate struct {
	// Position is the estimated 1-based place (1 = next to be dispatched).
	Position int32
	// EstimatedWait is the estimated time until dispatch; zero when the
	// scheduler has no estimate yet.
	EstimatedWait time.Duration
}

// QueueWatcher is a Sink that wants to hear where its request waits before it
// is admitted (streaming surfaces send an early header or comments).
type QueueWatcher interface {
	// Queued is called while the request waits, on the request's goroutine,
	// before the attempt's Admitted; it must not block for long.
	Queued(QueueUpdate)
}

// WatchAdmitter is an Admitter that can report queue updates while Admit
// waits (cpclient.Client).
type WatchAdmitter interface {
	AdmitWatch(ctx context.Context, req AdmitRequest, queued func(QueueUpdate)) (Grant, error)
}

// admit asks for a lease, with queue updates when both the sink and the
// control plane client can carry them.
func (r *Relay) admit(ctx context.Context, sink Sink, req AdmitRequest) (Grant, error) {
	if w, ok := sink.(QueueWatcher); ok {
		if wa, ok := r.cp.(WatchAdmitter); ok {
			return wa.AdmitWatch(ctx, req, w.Queued)
		}
	}
	return r.cp.Admit(ctx, req)
}
