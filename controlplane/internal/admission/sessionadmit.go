package admission

import (
	"context"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/mindrouter/mindrouter/controlplane/internal/scheduler"
	"github.com/mindrouter/mindrouter/proto/errinfo"
	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

// admitSpanName is the name the gRPC instrumentation gives a unary Admit's
// server span; an admission that rides a session gets a span of the same name.
const admitSpanName = "mindrouter.controlplane.v1.AdmissionService/Admit"

// errNotLeader refuses a session admission on a control plane that stopped
// leading, as the gRPC server refuses a unary Admit: UNAVAILABLE without a
// reason, which the data plane takes for "try the next control plane".
var errNotLeader = status.Error(codes.Unavailable, "this control plane is not the leader")

// sessionAdmits runs the admissions that ride one session: each in its own
// goroutine (an admission blocks while queued), answering over the shared
// stream through send, which serialises the writers.
type sessionAdmits struct {
	s    *Server
	ctx  context.Context
	send func(*controlplanev1.SessionResponse) error
	wg   sync.WaitGroup

	mu      sync.Mutex
	cancels map[uint64]context.CancelFunc
	// closed is set when the session's handler returns: later admissions (the
	// receiver may still deliver one) are dropped, and wg gains no more.
	closed bool
}

// start admits m in the background. A seq already in flight is refused (the
// replica numbers its admissions; a duplicate is a bug, not a retry).
func (a *sessionAdmits) start(m *controlplanev1.SessionAdmit) {
	seq := m.GetSeq()
	var ctx context.Context
	var cancel context.CancelFunc
	if d := m.GetTimeout(); d != nil {
		ctx, cancel = context.WithTimeout(a.ctx, max(d.AsDuration(), 0))
	} else {
		ctx, cancel = context.WithCancel(a.ctx)
	}
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		cancel()
		return
	}
	_, dup := a.cancels[seq]
	if !dup {
		a.cancels[seq] = cancel
		a.wg.Add(1)
	}
	a.mu.Unlock()
	if dup {
		cancel()
		a.s.metrics.admissions.WithLabelValues("invalid").Inc()
		_ = a.send(admitErrorResult(seq, status.New(codes.InvalidArgument, "admission seq already in flight on this session")))
		return
	}
	go func() {
		defer a.wg.Done()
		defer func() {
			a.mu.Lock()
			delete(a.cancels, seq)
			a.mu.Unlock()
			cancel()
		}()
		a.s.sessionAdmit(ctx, m, a.send)
	}()
}

// close waits for the admissions in flight (their context is the session's,
// already cancelled) and drops any that arrive later.
func (a *sessionAdmits) close() {
	a.mu.Lock()
	a.closed = true
	a.mu.Unlock()
	a.wg.Wait()
}

// cancel withdraws an admission whose caller went away; unknown seqs (already
// answered) are ignored.
func (a *sessionAdmits) cancel(seq uint64) {
	a.mu.Lock()
	cancel := a.cancels[seq]
	a.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// sessionAdmit runs one admission exactly as the unary Admit does (the same
// admit, metrics and error table) and sends its answer: queue updates when
// asked for, then the grant or the error. A grant that cannot be sent is freed
// at once.
func (s *Server) sessionAdmit(ctx context.Context, m *controlplanev1.SessionAdmit, send func(*controlplanev1.SessionResponse) error) {
	seq, req := m.GetSeq(), m.GetRequest()
	ctx, span := s.startRemoteSpan(ctx, m.GetTraceparent(), admitSpanName, "Admit", attribute.Bool("mindrouter.admit.session", true))
	if span != nil {
		defer span.End()
	}
	var report func(scheduler.Progress)
	if m.GetWatch() {
		report = func(p scheduler.Progress) {
			_ = send(&controlplanev1.SessionResponse{Kind: &controlplanev1.SessionResponse_AdmitResult{AdmitResult: &controlplanev1.AdmitResult{
				Seq: seq, Kind: &controlplanev1.AdmitResult_Queued{Queued: &controlplanev1.QueueUpdate{
					Position: int32(p.Position), EstimatedWait: durationpb.New(p.EstimatedWait),
				}},
			}}})
		}
	}
	var resp *controlplanev1.AdmitResponse
	var err error
	if s.opts.Leading != nil && !s.opts.Leading() {
		err = errNotLeader
	} else {
		resp, err = s.admit(ctx, req, report)
	}
	s.metrics.admitted(err)
	if err != nil {
		st := status.Convert(s.opts.Status(ctx, err))
		if span != nil {
			span.SetStatus(otelcodes.Error, st.Message())
			span.SetAttributes(attribute.Int("rpc.grpc.status_code", int(st.Code())))
		}
		_ = send(admitErrorResult(seq, st))
		return
	}
	err = send(&controlplanev1.SessionResponse{Kind: &controlplanev1.SessionResponse_AdmitResult{AdmitResult: &controlplanev1.AdmitResult{
		Seq: seq, Kind: &controlplanev1.AdmitResult_Admitted{Admitted: resp},
	}}})
	if err != nil {
		s.abandon(resp.GetLease().GetLeaseId())
	}
}

// admitErrorResult carries st, the status the unary Admit would have returned:
// its code, message, refusal reason and retry delay.
func admitErrorResult(seq uint64, st *status.Status) *controlplanev1.SessionResponse {
	e := errinfo.AdmitError(st)
	return &controlplanev1.SessionResponse{Kind: &controlplanev1.SessionResponse_AdmitResult{AdmitResult: &controlplanev1.AdmitResult{
		Seq: seq, Kind: &controlplanev1.AdmitResult_Error{Error: e},
	}}}
}

// plainStatus is the default Options.Status: status errors pass, context
// errors keep their meaning, anything else is Internal. The composition root
// sets the gRPC server's error table instead, so that refusals carry their
// reasons exactly as a unary Admit's do.
func plainStatus(_ context.Context, err error) error {
	if st, ok := errinfo.KnownStatus(err); ok {
		return st.Err()
	}
	return status.Error(codes.Internal, "internal error")
}

// startRemoteSpan starts a server span named name whose parent is the trace
// context tp (a traceparent value) carried by a session message, so that the
// request's trace shows the call like a unary one. Without a valid tp it
// returns ctx and a nil span: the session stream's own span would only mislead.
func (s *Server) startRemoteSpan(ctx context.Context, tp, name, method string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	if tp == "" {
		return ctx, nil
	}
	parent := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), propagation.MapCarrier{"traceparent": tp}))
	if !parent.IsValid() {
		return ctx, nil
	}
	return s.tracer.Start(trace.ContextWithRemoteSpanContext(ctx, parent), name,
		trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(append([]attribute.KeyValue{attribute.String("rpc.system", "grpc"),
			attribute.String("rpc.service", "mindrouter.controlplane.v1.AdmissionService"),
			attribute.String("rpc.method", method)}, attrs...)...))
}
