package audit

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	auditv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/audit/v1"
	"github.com/mindrouter/mindrouter/spool"
)

// Sender delivers one batch to the control plane and returns once the control
// plane acknowledged it (it is then durable there); an error means it may not
// have arrived and must be sent again.
type Sender interface {
	SendAudit(ctx context.Context, b *auditv1.Batch) error
}

// Policy is what happens when the spool is full.
type Policy string

// Policies.
const (
	// FailClosed refuses new inference requests (503) while the spool is full.
	FailClosed Policy = "fail-closed"
	// FailOpen drops records that do not fit, counting and logging them.
	FailOpen Policy = "fail-open"
)

// Options configure a Shipper.
type Options struct {
	// BatchSize is the most records in one batch; FlushInterval the longest a
	// record waits for its batch to fill.
	BatchSize     int
	FlushInterval time.Duration
	// QueueSize is how many records wait in memory before the oldest go to
	// the spool, a batch at a time.
	QueueSize int
	// SendTimeout bounds one batch's send and acknowledgement.
	SendTimeout time.Duration
	// RetryInterval is how long to wait after a failed send.
	RetryInterval time.Duration
	Policy        Policy
	// Content false records metadata only.
	Content    bool
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Shipper batches records to the control plane, spooling them to disk while
// it does not acknowledge.
type Shipper struct {
	send  Sender
	spool *spool.Spool
	opts  Options
	log   *slog.Logger

	mu      sync.Mutex
	pending []*auditv1.Record
	arts    map[string]*auditv1.Artifact
	wake    chan struct{}

	shipped, spooled, dropped, refused prometheus.Counter
}

// NewShipper returns a shipper sending through send, spooling to spool.
func NewShipper(send Sender, spool *spool.Spool, opts Options) *Shipper {
	if opts.BatchSize <= 0 {
		opts.BatchSize = 256
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = 50 * time.Millisecond
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 10000
	}
	if opts.SendTimeout <= 0 {
		opts.SendTimeout = 10 * time.Second
	}
	if opts.RetryInterval <= 0 {
		opts.RetryInterval = time.Second
	}
	if opts.Policy == "" {
		opts.Policy = FailClosed
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Shipper{send: send, spool: spool, opts: opts, log: opts.Logger, arts: map[string]*auditv1.Artifact{},
		wake: make(chan struct{}, 1)}
	s.shipped = prometheus.NewCounter(prometheus.CounterOpts{Name: "mindrouter_dp_audit_records_shipped_total",
		Help: "Audit records the control plane acknowledged (replays from the spool included)."})
	s.spooled = prometheus.NewCounter(prometheus.CounterOpts{Name: "mindrouter_dp_audit_records_spooled_total",
		Help: "Audit records written to the local spool while the control plane did not acknowledge."})
	s.dropped = prometheus.NewCounter(prometheus.CounterOpts{Name: "mindrouter_dp_audit_records_dropped_total",
		Help: "Audit records dropped because the spool was full."})
	s.refused = prometheus.NewCounter(prometheus.CounterOpts{Name: "mindrouter_dp_audit_requests_refused_total",
		Help: "Inference requests refused because the audit spool was full (fail closed)."})
	spoolBytes := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "mindrouter_dp_audit_spool_bytes",
		Help: "Bytes waiting in the audit spool."}, func() float64 { _, b := spool.Len(); return float64(b) })
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(s.shipped, s.spooled, s.dropped, s.refused, spoolBytes)
	}
	return s
}

// ErrSpoolFullRefused is the refusal of a new request while the spool is full
// and the policy fails closed.
var ErrSpoolFullRefused = &canonical.Error{Kind: canonical.KindUnavailable, Code: "audit_unavailable",
	Message: "The audit trail cannot record requests now; try again later.", Wait: 5 * time.Second}

// Gate refuses new requests while the spool is full, when the policy fails closed.
func (s *Shipper) Gate() error {
	if s.opts.Policy == FailClosed && s.spool.Full() {
		s.refused.Inc()
		return ErrSpoolFullRefused
	}
	return nil
}

// Content reports whether records carry content.
func (s *Shipper) Content() bool { return s.opts.Content }

// Submit queues a finished record. It never waits for the control plane: while
// memory holds more than QueueSize records (the control plane away, or slower
// than the traffic), the oldest batch goes to the spool in one synced write,
// and a batch the spool cannot take is dropped or kept as the policy says.
// Spilling a batch at a time, not a record at a time, keeps an overloaded
// data plane from paying one fsync per request, and the spool's replay from
// sending one record per round trip.
func (s *Shipper) Submit(r *auditv1.Record, arts []*auditv1.Artifact) {
	s.mu.Lock()
	s.pending = append(s.pending, r)
	for _, a := range arts {
		s.arts[a.GetSha256()] = a
	}
	n := len(s.pending)
	var spill *auditv1.Batch
	if n >= s.opts.QueueSize+s.opts.BatchSize {
		spill = s.takeLocked()
	}
	s.mu.Unlock()
	switch {
	case spill != nil:
		s.toSpool(spill)
	case n >= s.opts.BatchSize:
		s.poke()
	}
}

func (s *Shipper) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// take removes up to one batch from memory.
func (s *Shipper) take() *auditv1.Batch {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.takeLocked()
}

// takeLocked is take with s.mu held.
func (s *Shipper) takeLocked() *auditv1.Batch {
	n := min(len(s.pending), s.opts.BatchSize)
	if n == 0 {
		return nil
	}
	b := &auditv1.Batch{Records: s.pending[:n:n]}
	s.pending = s.pending[n:]
	for _, r := range b.Records {
		for _, h := range r.GetArtifactHashes() {
			if a, ok := s.arts[h]; ok {
				b.Artifacts = append(b.Artifacts, a)
				delete(s.arts, h)
			}
		}
	}
	return b
}

func (s *Shipper) toSpool(b *auditv1.Batch) {
	data, err := proto.Marshal(b)
	if err == nil {
		err = s.spool.Append(data)
	}
	if errors.Is(err, spool.ErrFull) && s.opts.Policy == FailClosed && s.requeue(b) {
		// Failing closed keeps what it has (new requests are refused meanwhile).
		return
	}
	if err != nil {
		s.dropped.Add(float64(len(b.GetRecords())))
		s.log.Error("audit records dropped: the spool cannot take them", slog.Int("records", len(b.GetRecords())),
			slog.String("policy", string(s.opts.Policy)), slog.Any("error", err))
		return
	}
	s.spooled.Add(float64(len(b.GetRecords())))
}

// requeue puts b back in front of memory, unless memory would then hold more
// than twice its size and a batch (then the records are dropped after all).
func (s *Shipper) requeue(b *auditv1.Batch) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending)+len(b.GetRecords()) > 2*s.opts.QueueSize+s.opts.BatchSize {
		return false
	}
	s.pending = append(append([]*auditv1.Record{}, b.GetRecords()...), s.pending...)
	for _, a := range b.GetArtifacts() {
		s.arts[a.GetSha256()] = a
	}
	return true
}

// Run ships until ctx ends, then flushes what is in memory (sending it if the
// control plane acknowledges within the send timeout, spooling it otherwise).
func (s *Shipper) Run(ctx context.Context) error {
	t := time.NewTicker(s.opts.FlushInterval)
	defer t.Stop()
	for {
		s.drain(ctx)
		select {
		case <-ctx.Done():
			s.flush()
			return nil
		case <-t.C:
		case <-s.wake:
		}
	}
}

// drain sends the spool (oldest first), then memory, until a send fails.
func (s *Shipper) drain(ctx context.Context) {
	for ctx.Err() == nil {
		seq, data, ok, err := s.spool.Head()
		if err != nil {
			s.log.Error("audit spool unreadable", slog.Any("error", err))
			return
		}
		if !ok {
			break
		}
		b := &auditv1.Batch{}
		if err := proto.Unmarshal(data, b); err != nil {
			s.log.Error("dropping unreadable spooled audit batch", slog.Uint64("seq", seq), slog.Any("error", err))
			_ = s.spool.Remove(seq)
			continue
		}
		if !s.sendOrWait(ctx, b) {
			s.spillMemory()
			return
		}
		_ = s.spool.Remove(seq)
	}
	for ctx.Err() == nil {
		b := s.take()
		if b == nil {
			return
		}
		if !s.sendOrWait(ctx, b) {
			s.toSpool(b)
			return
		}
	}
}

// spillMemory moves what waits in memory to the spool while the control plane
// does not answer, so that memory stays bounded and a restart loses nothing.
func (s *Shipper) spillMemory() {
	for !s.spool.Full() {
		b := s.take()
		if b == nil {
			return
		}
		s.toSpool(b)
	}
}

func (s *Shipper) sendOrWait(ctx context.Context, b *auditv1.Batch) bool {
	sctx, cancel := context.WithTimeout(ctx, s.opts.SendTimeout)
	err := s.send.SendAudit(sctx, b)
	cancel()
	if err == nil {
		s.shipped.Add(float64(len(b.GetRecords())))
		return true
	}
	if ctx.Err() == nil {
		s.log.Warn("audit batch not acknowledged; spooling and retrying", slog.Int("records", len(b.GetRecords())), slog.Any("error", err))
		select {
		case <-ctx.Done():
		case <-time.After(s.opts.RetryInterval):
		}
	}
	return false
}

// flush, at shutdown, gives what is in memory one chance to be sent, and
// spools the rest.
func (s *Shipper) flush() {
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.SendTimeout)
	defer cancel()
	for b := s.take(); b != nil; b = s.take() {
		if err := s.send.SendAudit(ctx, b); err != nil {
			s.toSpool(b)
			continue
		}
		s.shipped.Add(float64(len(b.GetRecords())))
	}
}

// Pending returns the records in memory and the batches in the spool.
func (s *Shipper) Pending() (memory, spooled int) {
	s.mu.Lock()
	memory = len(s.pending)
	s.mu.Unlock()
	spooled, _ = s.spool.Len()
	return memory, spooled
}
