package cpclient

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/mindrouter/mindrouter/dataplane/internal/relay"
	"github.com/mindrouter/mindrouter/proto/errinfo"
	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

// admitSpanName is the name otelgrpc gives a unary Admit's client span; an
// admission that rides the session gets a span of the same name.
const admitSpanName = "mindrouter.controlplane.v1.AdmissionService/Admit"

// errSessionEnded is what an admission waiting on a session that broke gets:
// the status a unary Admit gets from a control plane that went away
// (UNAVAILABLE without a reason), so that the failover logic retries it.
var errSessionEnded = status.Error(codes.Unavailable, "control-plane session ended before the admission was answered")

// liveSession is an established session stream as admissions use it: one
// writer at a time (heartbeats, release batches and admissions share the
// stream), and the admissions waiting for their answers by seq.
type liveSession struct {
	sendMu sync.Mutex
	st     sessionSender
	// admits is true when the control plane answers SessionAdmit (its Welcome said so).
	admits bool
	seq    atomic.Uint64

	mu      sync.Mutex
	closed  bool
	pending map[uint64]*admitWaiter
	// done is closed when the session ends.
	done chan struct{}
}

// admitWaiter is one admission waiting on a session.
type admitWaiter struct {
	// final receives the grant or the error (at most one, never blocks).
	final chan *controlplanev1.AdmitResult
	// updates receives queue updates for a watching caller; nil otherwise.
	updates chan *controlplanev1.QueueUpdate
}

func newLiveSession(st sessionSender, admits bool) *liveSession {
	return &liveSession{st: st, admits: admits, pending: map[uint64]*admitWaiter{}, done: make(chan struct{})}
}

// Send writes m; safe for concurrent use.
func (l *liveSession) Send(m *controlplanev1.SessionRequest) error {
	l.sendMu.Lock()
	defer l.sendMu.Unlock()
	return l.st.Send(m)
}

// register adds a waiter under a fresh seq; false once the session has ended.
func (l *liveSession) register(w *admitWaiter) (uint64, bool) {
	seq := l.seq.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, false
	}
	l.pending[seq] = w
	return seq, true
}

// forget removes seq's waiter; false when its answer was already handed over.
func (l *liveSession) forget(seq uint64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.pending[seq]
	delete(l.pending, seq)
	return ok
}

// end fails every waiting admission (they see done) and refuses new ones.
func (l *liveSession) end() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.closed = true
	clear(l.pending)
	close(l.done)
}

// deliver hands an AdmitResult to its waiter. It returns the grant nobody
// waits for any more (the caller left as it was granted), for the caller to
// release.
func (l *liveSession) deliver(r *controlplanev1.AdmitResult) (orphan *controlplanev1.Lease) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.pending[r.GetSeq()]
	if q := r.GetQueued(); q != nil {
		if w != nil && w.updates != nil {
			select {
			case w.updates <- q:
			default: // the caller is behind; a later update supersedes this one
			}
		}
		return nil
	}
	if w == nil {
		return r.GetAdmitted().GetLease()
	}
	delete(l.pending, r.GetSeq())
	w.final <- r
	return nil
}

// admitCall is the call an admission takes: over the session when it is up
// and its control plane answers admissions there (unless Config.UnaryAdmit),
// otherwise the unary Admit, or AdmitStream for a watching caller.
func (c *Client) admitCall(queued func(relay.QueueUpdate)) func(context.Context, *controlplanev1.AdmitRequest) (*controlplanev1.AdmitResponse, error) {
	return func(ctx context.Context, req *controlplanev1.AdmitRequest) (*controlplanev1.AdmitResponse, error) {
		if !c.cfg.UnaryAdmit {
			if l := c.live.Load(); l != nil && l.admits {
				if resp, err := c.admitOnSession(ctx, l, req, queued); !errors.Is(err, errNotSent) {
					return resp, err
				}
			}
		}
		if queued != nil {
			return c.admitStream(ctx, req, queued)
		}
		return c.admission.Admit(ctx, req)
	}
}

// errNotSent is admitOnSession's answer when the session ended before the
// admission could be sent: the unary call takes it then.
var errNotSent = errors.New("session ended before the admission was sent")

// admitOnSession sends req over the session and waits for its answer, or
// fails with errNotSent. Cancelling ctx withdraws the admission (a SessionCancel takes it
// off the control plane's queue); a grant that crosses the cancel is released.
// The session breaking while it waits fails it with UNAVAILABLE, as a unary
// call to a control plane that went away does.
func (c *Client) admitOnSession(ctx context.Context, l *liveSession, req *controlplanev1.AdmitRequest, queued func(relay.QueueUpdate)) (resp *controlplanev1.AdmitResponse, err error) {
	w := &admitWaiter{final: make(chan *controlplanev1.AdmitResult, 1)}
	if queued != nil {
		w.updates = make(chan *controlplanev1.QueueUpdate, 4)
	}
	seq, ok := l.register(w)
	if !ok {
		return nil, errNotSent
	}
	ctx, span := c.tracer.Start(ctx, admitSpanName, trace.WithSpanKind(trace.SpanKindClient))
	if span.IsRecording() { // without an exporter the attributes would be built for nothing
		span.SetAttributes(attribute.String("rpc.system", "grpc"), attribute.String("rpc.service", "mindrouter.controlplane.v1.AdmissionService"),
			attribute.String("rpc.method", "Admit"), attribute.Bool("mindrouter.admit.session", true))
	}
	defer func() {
		if err != nil && span.IsRecording() {
			span.SetStatus(otelcodes.Error, err.Error())
			span.SetAttributes(attribute.Int("rpc.grpc.status_code", int(status.Code(err))))
		}
		span.End()
	}()
	msg := &controlplanev1.SessionAdmit{Seq: seq, Request: req, Traceparent: traceparent(ctx), Watch: queued != nil}
	if dl, has := ctx.Deadline(); has {
		msg.Timeout = durationpb.New(time.Until(dl))
	}
	if err := l.Send(&controlplanev1.SessionRequest{Kind: &controlplanev1.SessionRequest_Admit{Admit: msg}}); err != nil {
		l.forget(seq)
		// The stream is broken: an answer cannot come (the control plane's side
		// of the session ends with it, freeing anything it granted).
		return nil, errNotSent
	}
	for {
		select {
		case r := <-w.final:
			return resultOf(r)
		case q := <-w.updates: // nil channel without a watcher
			queued(queueUpdateOf(q))
		case <-l.done:
			select {
			case r := <-w.final:
				return resultOf(r)
			default:
			}
			return nil, errSessionEnded
		case <-ctx.Done():
			if l.forget(seq) {
				_ = l.Send(&controlplanev1.SessionRequest{Kind: &controlplanev1.SessionRequest_Cancel{Cancel: &controlplanev1.SessionCancel{Seq: seq}}})
			} else {
				// The answer was handed over as the caller left (or the session
				// ended): a grant is released unused.
				select {
				case r := <-w.final:
					if lease := r.GetAdmitted().GetLease(); lease != nil {
						c.releaseUnused(lease)
					}
				default:
				}
			}
			return nil, status.FromContextError(ctx.Err()).Err()
		}
	}
}

// resultOf turns an AdmitResult into what the unary Admit returns: the
// response, or a status error with the same code, reason and retry delay.
func resultOf(r *controlplanev1.AdmitResult) (*controlplanev1.AdmitResponse, error) {
	if a := r.GetAdmitted(); a != nil {
		return a, nil
	}
	e := r.GetError()
	if e == nil {
		return nil, status.Error(codes.Internal, "admission answered without a grant or an error")
	}
	return nil, errinfo.AdmitStatus(e).Err()
}

// releaseUnused settles a grant that no request will use (its caller left).
func (c *Client) releaseUnused(l *controlplanev1.Lease) {
	c.leases.add(l)
	err := c.Release(context.Background(), relay.Release{
		LeaseID: l.GetLeaseId(), Outcome: relay.OutcomeClientCancelled, Error: "client went away as it was admitted",
		RequestID: l.GetRequestId(), BackendID: l.GetBackendId(), UserID: l.GetPrincipal().GetUserId(), Model: l.GetModel(),
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		c.log.Warn("release of an unused grant failed; the control plane will expire it", "lease_id", l.GetLeaseId(), "error", err)
	}
}

// defaultTracer is the tracer of session admissions' client spans.
func defaultTracer() trace.Tracer {
	return otel.GetTracerProvider().Tracer("github.com/mindrouter/mindrouter/dataplane/internal/cpclient")
}
