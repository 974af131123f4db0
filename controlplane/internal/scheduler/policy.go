package scheduler

import (
	"slices"
	"time"
)

// Ticket describes one request that wants a backend slot.
type Ticket struct {
	// RequestID identifies the client request (stable across retries).
	RequestID string
	// UserID is the principal the request is charged to.
	UserID int64
	// Model is the queue the ticket waits in.
	Model string
	// Cost is the estimated number of tokens (prompt plus output).
	Cost int64
	// Weight is the user's fair-share weight (1 when unset).
	Weight int
	// Enqueued is when Acquire was called; Acquire sets it.
	Enqueued time.Time
}

// Waiter is a ticket waiting in a Queue. Policies keep and order Waiters; the
// Queue owns their lifetime.
type Waiter struct {
	ticket Ticket
	seq    uint64
	pick   Picker
	done   chan struct{}
	// Set under the Queue lock before done is closed.
	finished bool
	grant    Grant
	err      error
	// Links of the policy's per-model list.
	prev, next *Waiter
	// Links of the Queue's per-model arrival list.
	aprev, anext *Waiter
}

// Ticket returns the waiting ticket.
func (w *Waiter) Ticket() Ticket { return w.ticket }

// Seq is the waiter's arrival number in its Queue: lower arrived earlier.
func (w *Waiter) Seq() uint64 { return w.seq }

// Policy orders the waiters of a Queue. The Queue calls every method with its lock
// held, so implementations need no locking and must not block. A Policy only
// orders: capacity, timeouts and cancellation belong to the Queue.
type Policy interface {
	// Push appends w to the queue of w.Ticket().Model and returns its 1-based
	// position there, or an error when the policy refuses it (e.g. the user has too
	// many requests queued already).
	Push(w *Waiter) (int, error)
	// Remove withdraws a waiter that gives up (timeout or cancellation).
	Remove(w *Waiter)
	// Head returns the waiter of model that should get the next slot, or nil.
	Head(model string) *Waiter
	// Pop removes Head(model), which was just granted a slot or failed.
	Pop(model string)
	// Len is the number of waiters of model.
	Len(model string) int
	// Models appends to dst the models that have waiters, in the order they should
	// be offered capacity, and returns the extended slice.
	Models(dst []string) []string
	// Charge accounts for a ticket that was granted at once, without queueing, so
	// that token-weighted policies bill it like a dispatched one.
	Charge(t Ticket)
	// Settle reports what a granted ticket really cost, in tokens, when its slot
	// is released (token-weighted policies charge it; FIFO ignores it).
	Settle(t Ticket, cost int64)
}

// FIFO is the Policy that serves each model's tickets in arrival order and offers
// capacity to the model whose head arrived first.
type FIFO struct {
	queues map[string]*fifoList
}

type fifoList struct {
	head, tail *Waiter
	n          int
}

// NewFIFO returns an empty FIFO policy.
func NewFIFO() *FIFO {
	return &FIFO{queues: make(map[string]*fifoList)}
}

// Push appends w to its model's list; FIFO refuses nothing.
func (f *FIFO) Push(w *Waiter) (int, error) {
	l := f.queues[w.ticket.Model]
	if l == nil {
		l = &fifoList{}
		f.queues[w.ticket.Model] = l
	}
	w.prev, w.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = w
	} else {
		l.head = w
	}
	l.tail = w
	l.n++
	return l.n, nil
}

// Remove unlinks w from its model's list.
func (f *FIFO) Remove(w *Waiter) {
	l := f.queues[w.ticket.Model]
	if l == nil {
		return
	}
	if w.prev != nil {
		w.prev.next = w.next
	} else if l.head == w {
		l.head = w.next
	} else {
		return // not linked
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		l.tail = w.prev
	}
	w.prev, w.next = nil, nil
	l.n--
	if l.n == 0 {
		delete(f.queues, w.ticket.Model)
	}
}

// Head returns the oldest waiter of model.
func (f *FIFO) Head(model string) *Waiter {
	if l := f.queues[model]; l != nil {
		return l.head
	}
	return nil
}

// Pop removes the oldest waiter of model.
func (f *FIFO) Pop(model string) {
	if w := f.Head(model); w != nil {
		f.Remove(w)
	}
}

// Len is the number of waiters of model.
func (f *FIFO) Len(model string) int {
	if l := f.queues[model]; l != nil {
		return l.n
	}
	return 0
}

// Models lists the models with waiters, oldest head first.
func (f *FIFO) Models(dst []string) []string {
	start := len(dst)
	for m := range f.queues {
		dst = append(dst, m)
	}
	slices.SortFunc(dst[start:], func(a, b string) int {
		sa, sb := f.queues[a].head.seq, f.queues[b].head.seq
		switch {
		case sa < sb:
			return -1
		case sa > sb:
			return 1
		}
		return 0
	})
	return dst
}

// Charge does nothing: FIFO does not weigh cost.
func (f *FIFO) Charge(Ticket) {}

// Settle does nothing: FIFO does not weigh cost.
func (f *FIFO) Settle(Ticket, int64) {}
