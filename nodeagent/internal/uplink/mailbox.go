package uplink

import (
	"sync"

	nodeagentv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/nodeagent/v1"
)

// mailbox holds at most one sample waiting to be sent: the bounded buffer between the
// sampling loop and the stream. A newer sample replaces an unsent one.
type mailbox struct {
	mu    sync.Mutex
	s     *nodeagentv1.NodeSample
	ready chan struct{} // signalled when a sample is put; may be stale
}

func newMailbox() mailbox {
	return mailbox{ready: make(chan struct{}, 1)}
}

// put stores s and reports whether it replaced an unsent sample.
func (m *mailbox) put(s *nodeagentv1.NodeSample) (replaced bool) {
	m.mu.Lock()
	replaced = m.s != nil
	m.s = s
	m.mu.Unlock()
	m.signal()
	return replaced
}

// take removes and returns the waiting sample, or nil.
func (m *mailbox) take() *nodeagentv1.NodeSample {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.s
	m.s = nil
	return s
}

// restore puts back a sample whose send failed, unless a newer one arrived meanwhile.
func (m *mailbox) restore(s *nodeagentv1.NodeSample) {
	m.mu.Lock()
	if m.s != nil {
		m.mu.Unlock()
		return
	}
	m.s = s
	m.mu.Unlock()
	m.signal()
}

func (m *mailbox) empty() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.s == nil
}

func (m *mailbox) signal() {
	select {
	case m.ready <- struct{}{}:
	default:
	}
}
