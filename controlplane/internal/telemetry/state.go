package telemetry

import (
	"cmp"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
	adminv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/admin/v1"
	nodeagentv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/nodeagent/v1"
)

// session is one agent stream. Only its stream's goroutine touches the fields below
// replaced; replaced is closed (under Service.mu) when a newer stream takes the node.
type session struct {
	nodeID   int64
	nodeName string
	replaced chan struct{}

	upserted  bool
	inventory []store.GPUDeviceSpec
	nvmlDown  bool
	driver    string
	cuda      string
	gpuCount  int
	lastWrite time.Time
}

// nodeState is a connected node's latest sample, owned by its current session.
type nodeState struct {
	sess      *session
	sampledAt time.Time
	gpus      []*nodeagentv1.GPUSample // by index
}

// attach makes a new session the node's current one, replacing any older stream.
func (s *Service) attach(node store.Node) *session {
	sess := &session{nodeID: node.ID, nodeName: node.Name, replaced: make(chan struct{})}
	s.mu.Lock()
	if old := s.nodes[node.ID]; old != nil {
		close(old.sess.replaced)
	}
	s.nodes[node.ID] = &nodeState{sess: sess}
	s.mu.Unlock()
	s.streams.Add(1)
	return sess
}

// release forgets the node's readings if sess is still its current session, and
// reports whether it was.
func (s *Service) release(sess *session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.nodes[sess.nodeID]
	if st == nil || st.sess != sess {
		return false
	}
	delete(s.nodes, sess.nodeID)
	return true
}

// keep replaces the node's latest readings, unless sess has been replaced.
func (s *Service) keep(sess *session, sampledAt time.Time, gpus []*nodeagentv1.GPUSample) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.nodes[sess.nodeID]; st != nil && st.sess == sess {
		st.sampledAt, st.gpus = sampledAt, gpus
	}
}

// Latest returns a copy of the latest reading of every GPU of every connected node,
// sorted by node name, then GPU index.
func (s *Service) Latest() []*adminv1.GPU {
	s.mu.RLock()
	var out []*adminv1.GPU
	for _, st := range s.nodes {
		at := toTimestamp(st.sampledAt)
		for _, g := range st.gpus {
			out = append(out, &adminv1.GPU{
				NodeId:    st.sess.nodeID,
				NodeName:  st.sess.nodeName,
				SampledAt: proto.CloneOf(at),
				Sample:    proto.CloneOf(g),
			})
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b *adminv1.GPU) int {
		return cmp.Or(cmp.Compare(a.GetNodeName(), b.GetNodeName()),
			cmp.Compare(a.GetSample().GetIndex(), b.GetSample().GetIndex()))
	})
	return out
}

// byIndex orders a sample's GPUs by index; of two readings with the same index the
// later one wins.
func byIndex(in []*nodeagentv1.GPUSample) []*nodeagentv1.GPUSample {
	out := make([]*nodeagentv1.GPUSample, 0, len(in))
	for _, g := range in {
		if g == nil {
			continue
		}
		if i := slices.IndexFunc(out, func(o *nodeagentv1.GPUSample) bool { return o.GetIndex() == g.GetIndex() }); i >= 0 {
			out[i] = g
			continue
		}
		out = append(out, g)
	}
	slices.SortFunc(out, func(a, b *nodeagentv1.GPUSample) int { return cmp.Compare(a.GetIndex(), b.GetIndex()) })
	return out
}

// inventory is the static part of the readings, as stored.
func inventory(gpus []*nodeagentv1.GPUSample) []store.GPUDeviceSpec {
	out := make([]store.GPUDeviceSpec, len(gpus))
	for i, g := range gpus {
		out[i] = store.GPUDeviceSpec{
			Index:                int(g.GetIndex()),
			UUID:                 g.GetUuid(),
			Name:                 g.GetName(),
			PCIBusID:             g.GetPciBusId(),
			ComputeCapability:    g.GetComputeCapability(),
			MemoryTotalBytes:     int64(min(g.GetMemoryTotalBytes(), 1<<63-1)),
			PowerLimitMilliwatts: int64(g.GetPowerLimitMilliwatts()),
		}
	}
	return out
}

func equalInventory(a, b []store.GPUDeviceSpec) bool { return slices.Equal(a, b) }
