package admission

import (
	"context"
	"log/slog"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/mindrouter/mindrouter/controlplane/internal/scheduler"
	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

// Watcher is a Scheduler that reports a waiting ticket's progress
// (scheduler.Queue); AdmitStream sends what it reports.
type Watcher interface {
	AcquireWatch(ctx context.Context, t scheduler.Ticket, pick scheduler.Picker, report func(scheduler.Progress)) (scheduler.Grant, error)
}

// AdmitStream is Admit that sends the request's queue position and estimated
// wait while it waits (as the scheduler reports them: when it is queued, then on
// change at most once per update interval), then the grant. Errors, metrics,
// the decision log and cancellation are Admit's. A grant that cannot be sent
// (the caller left at that instant) is freed at once, so that it does not hold
// its slot until the lease expires.
func (s *Server) AdmitStream(in *controlplanev1.AdmitStreamRequest, stream grpc.ServerStreamingServer[controlplanev1.AdmitStreamResponse]) error {
	ctx, req := stream.Context(), in.GetRequest() // a missing request fails validation

	var sendErr error
	report := func(p scheduler.Progress) {
		if sendErr != nil {
			return
		}
		sendErr = stream.Send(&controlplanev1.AdmitStreamResponse{Kind: &controlplanev1.AdmitStreamResponse_Queued{
			Queued: &controlplanev1.QueueUpdate{Position: int32(p.Position), EstimatedWait: durationpb.New(p.EstimatedWait)},
		}})
	}
	resp, err := s.admit(ctx, req, report)
	s.metrics.admitted(err)
	if err != nil {
		return err
	}
	if err := stream.Send(&controlplanev1.AdmitStreamResponse{Kind: &controlplanev1.AdmitStreamResponse_Admitted{Admitted: resp}}); err != nil {
		s.abandon(resp.GetLease().GetLeaseId())
		return err
	}
	return nil
}

// abandon frees a lease whose grant never reached the data plane.
func (s *Server) abandon(id string) {
	now := s.opts.Now()
	l, found := s.leases.take(id, false, now)
	if found != leaseTaken {
		return
	}
	s.log.Warn("grant not delivered; freeing its slot", slog.String("lease_id", id), slog.String("request_id", l.requestID))
	s.free(l, Settlement{Outcome: controlplanev1.Outcome_OUTCOME_CLIENT_CANCELLED})
}

// acquire waits for a slot, reporting progress when asked and the scheduler can.
func (s *Server) acquire(ctx context.Context, t scheduler.Ticket, pick scheduler.Picker, report func(scheduler.Progress)) (scheduler.Grant, error) {
	if w, ok := s.sched.(Watcher); ok && report != nil {
		return w.AcquireWatch(ctx, t, pick, report)
	}
	return s.sched.Acquire(ctx, t, pick)
}
