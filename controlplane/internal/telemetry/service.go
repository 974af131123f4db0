package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mindrouter/mindrouter/controlplane/internal/history"
	"github.com/mindrouter/mindrouter/controlplane/internal/store"
	nodeagentv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/nodeagent/v1"
)

// MaxGPUsPerSample bounds the GPUs one sample may carry.
const MaxGPUsPerSample = 256

// NodeStore is what the service needs of the store (*store.Store provides it).
type NodeStore interface {
	GetNodeByName(ctx context.Context, name string) (store.Node, error)
	RecordNodeAgent(ctx context.Context, id int64, info store.NodeAgentInfo) error
	UpsertGPUDevices(ctx context.Context, nodeID int64, devices []store.GPUDeviceSpec) error
}

// Options configures a Service. Zero values select the defaults.
type Options struct {
	// SampleInterval is what Welcome asks agents to sample at (default 10 s).
	SampleInterval time.Duration
	// LastSeenEvery is how often a connected node's last_seen is written while its
	// versions and GPU count stay the same (default 60 s).
	LastSeenEvery time.Duration
	// StoreTimeout bounds the store writes made when a stream ends (default 5 s).
	StoreTimeout time.Duration
	Logger       *slog.Logger
	Now          func() time.Time
	// Registerer receives the service's metrics; nil registers none.
	Registerer prometheus.Registerer
	// History, when set, receives every sample as time-series points. It must not
	// block (history.Writer drops when its queue is full).
	History HistorySink
}

// HistorySink takes samples for the telemetry history (*history.Writer provides it).
type HistorySink interface {
	OfferPoints(points []store.MetricPoint) bool
}

func (o Options) withDefaults() Options {
	if o.SampleInterval <= 0 {
		o.SampleInterval = 10 * time.Second
	}
	if o.LastSeenEvery <= 0 {
		o.LastSeenEvery = time.Minute
	}
	if o.StoreTimeout <= 0 {
		o.StoreTimeout = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Service is the TelemetryService server. It is safe for concurrent use.
type Service struct {
	nodeagentv1.UnimplementedTelemetryServiceServer

	st   NodeStore
	opts Options
	log  *slog.Logger

	mu    sync.RWMutex
	nodes map[int64]*nodeState // connected nodes, by id

	streams      atomic.Int64
	samples      atomic.Uint64
	authFailures atomic.Uint64
}

// New returns a Service over st.
func New(st NodeStore, opts Options) (*Service, error) {
	if st == nil {
		return nil, errors.New("telemetry: a node store is required")
	}
	opts = opts.withDefaults()
	s := &Service{
		st:    st,
		opts:  opts,
		log:   opts.Logger,
		nodes: map[int64]*nodeState{},
	}
	if opts.Registerer != nil {
		if err := s.register(opts.Registerer); err != nil {
			return nil, fmt.Errorf("telemetry: register metrics: %w", err)
		}
	}
	return s, nil
}

// Stream serves one agent: authenticate from metadata, Hello → Welcome, then an Ack for
// every sample until the agent leaves or a newer stream of the same node replaces it.
func (s *Service) Stream(stream nodeagentv1.TelemetryService_StreamServer) error {
	ctx := stream.Context()
	node, err := s.authenticate(ctx)
	if err != nil {
		return err
	}
	first, err := stream.Recv()
	if errors.Is(err, io.EOF) {
		return nil
	}
	if err != nil {
		return err
	}
	hello := first.GetHello()
	if hello == nil {
		return invalidError("the first message of a telemetry stream must be a Hello")
	}
	if hello.GetNodeName() != "" && hello.GetNodeName() != node.Name {
		return invalidf("hello node_name %q does not match the authenticated node", hello.GetNodeName())
	}

	sess := s.attach(node)
	log := s.log.With(slog.String("node", node.Name), slog.Int64("node_id", node.ID))
	log.Info("node agent connected", slog.String("agent_version", hello.GetAgentVersion()),
		slog.String("hostname", hello.GetHostname()))
	defer s.detach(ctx, sess, log)

	s.record(ctx, sess, log, store.NodeAgentInfo{
		Status: store.NodeOnline, LastSeen: s.opts.Now(), AgentVersion: hello.GetAgentVersion(),
	})
	err = stream.Send(&nodeagentv1.StreamResponse{Kind: &nodeagentv1.StreamResponse_Welcome{Welcome: &nodeagentv1.Welcome{
		NodeId:         node.ID,
		SampleInterval: durationpb.New(s.opts.SampleInterval),
	}}})
	if err != nil {
		return err
	}

	// The receiver ends when the stream does, which gRPC guarantees once this handler
	// returns.
	msgs := make(chan *nodeagentv1.StreamRequest)
	recvErr := make(chan error, 1)
	go func() {
		for {
			m, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			select {
			case msgs <- m:
			case <-ctx.Done():
				return
			}
		}
	}()

	for {
		select {
		case <-ctx.Done():
			return nil
		case <-sess.replaced:
			return ErrReplaced
		case err := <-recvErr:
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		case m := <-msgs:
			sample := m.GetSample()
			if sample == nil {
				return invalidError("only samples may follow the Hello")
			}
			if err := s.onSample(ctx, sess, log, sample); err != nil {
				return err
			}
			ack := &nodeagentv1.Ack{SampledAt: sample.GetSampledAt()}
			if err := stream.Send(&nodeagentv1.StreamResponse{Kind: &nodeagentv1.StreamResponse_Ack{Ack: ack}}); err != nil {
				return err
			}
		}
	}
}

// onSample keeps the sample as the node's latest and brings the store up to date
// where something changed.
func (s *Service) onSample(ctx context.Context, sess *session, log *slog.Logger, sample *nodeagentv1.NodeSample) error {
	if n := len(sample.GetGpus()); n > MaxGPUsPerSample {
		return invalidf("a sample may carry at most %d GPUs, got %d", MaxGPUsPerSample, n)
	}
	now := s.opts.Now()
	sampledAt := now
	if ts := sample.GetSampledAt(); ts.IsValid() {
		sampledAt = ts.AsTime()
	}
	gpus := byIndex(sample.GetGpus())
	s.keep(sess, sampledAt, gpus)
	s.samples.Add(1)
	if s.opts.History != nil {
		// The GPUs as kept (one reading per index), so a batch never holds a
		// series twice at one time.
		kept := &nodeagentv1.NodeSample{Gpus: gpus, HostPower: sample.GetHostPower()}
		s.opts.History.OfferPoints(history.NodePoints(sess.nodeID, sampledAt, kept))
	}

	nvmlDown := sample.GetNvmlError() != "" && len(gpus) == 0
	if nvmlDown != sess.nvmlDown {
		sess.nvmlDown = nvmlDown
		if nvmlDown {
			// The stored inventory is kept: a driver hiccup must not erase it.
			log.Warn("node agent cannot read NVML", slog.String("nvml_error", sample.GetNvmlError()))
		}
	}
	if !nvmlDown {
		inv := inventory(gpus)
		if !sess.upserted || !equalInventory(inv, sess.inventory) {
			if err := s.st.UpsertGPUDevices(ctx, sess.nodeID, inv); err != nil {
				log.Warn("store GPU inventory", slog.Any("error", err))
			} else {
				sess.upserted, sess.inventory = true, inv
				log.Info("GPU inventory stored", slog.Int("gpus", len(inv)))
			}
		}
	}

	info := store.NodeAgentInfo{
		Status:        store.NodeOnline,
		LastSeen:      now,
		DriverVersion: sample.GetDriverVersion(),
		CUDAVersion:   sample.GetCudaVersion(),
		GPUCount:      len(gpus),
	}
	changed := info.DriverVersion != sess.driver || info.CUDAVersion != sess.cuda || info.GPUCount != sess.gpuCount
	if changed || now.Sub(sess.lastWrite) >= s.opts.LastSeenEvery {
		if s.record(ctx, sess, log, info) {
			sess.driver, sess.cuda, sess.gpuCount = info.DriverVersion, info.CUDAVersion, info.GPUCount
		}
	}
	return nil
}

// record writes info for the session's node and reports whether it was stored; a
// failed write is logged and retried with a later sample.
func (s *Service) record(ctx context.Context, sess *session, log *slog.Logger, info store.NodeAgentInfo) bool {
	if err := s.st.RecordNodeAgent(ctx, sess.nodeID, info); err != nil {
		log.Warn("record node agent", slog.String("status", info.Status), slog.Any("error", err))
		return false
	}
	sess.lastWrite = info.LastSeen
	return true
}

// detach ends the session; if it was still the node's current one, the node's readings
// are dropped and the node recorded offline.
func (s *Service) detach(ctx context.Context, sess *session, log *slog.Logger) {
	s.streams.Add(-1)
	if !s.release(sess) {
		log.Info("replaced node agent stream closed")
		return
	}
	log.Info("node agent disconnected")
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.StoreTimeout)
	defer cancel()
	s.record(wctx, sess, log, store.NodeAgentInfo{Status: store.NodeOffline, LastSeen: s.opts.Now()})
}

// toTimestamp converts t for the wire.
func toTimestamp(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t) }
