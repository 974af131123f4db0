package modeljob

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mindrouter/mindrouter/controlplane/internal/registry"
	"github.com/mindrouter/mindrouter/controlplane/internal/store"
	adminv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/admin/v1"
)

// ServiceStore keeps the jobs for the service (store.Store).
type ServiceStore interface {
	CreateModelJob(ctx context.Context, spec store.ModelJobSpec) (store.ModelJob, error)
	GetModelJob(ctx context.Context, id int64) (store.ModelJob, error)
	ListModelJobs(ctx context.Context, f store.ModelJobFilter) ([]store.ModelJob, error)
	AfterCommit(ctx context.Context, fn func())
	CancelQueuedModelJob(ctx context.Context, id int64, at time.Time) (bool, error)
}

// Lookup finds backends (registry.Registry).
type Lookup interface {
	GetBackend(id int64) (registry.Backend, error)
	ListBackends() []registry.Backend
}

// Control is what the service asks of the runner.
type Control interface {
	Wake()
	Cancel(id int64) bool
}

// ServiceOptions configure a Service.
type ServiceOptions struct {
	// MaxAttempts is how many attempts a new job gets; default 3.
	MaxAttempts int
	// WatchInterval is how often WatchModelJob reads the job; default 500ms.
	WatchInterval time.Duration
}

// Service is the ModelJobService.
type Service struct {
	adminv1.UnimplementedModelJobServiceServer
	st       ServiceStore
	backends Lookup
	runner   Control
	opts     ServiceOptions
}

// NewService returns the ModelJobService.
func NewService(st ServiceStore, backends Lookup, runner Control, opts ServiceOptions) *Service {
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 3
	}
	if opts.WatchInterval <= 0 {
		opts.WatchInterval = 500 * time.Millisecond
	}
	return &Service{st: st, backends: backends, runner: runner, opts: opts}
}

// PullModel queues a pull.
func (s *Service) PullModel(ctx context.Context, req *adminv1.PullModelRequest) (*adminv1.PullModelResponse, error) {
	j, err := s.queue(ctx, store.ModelJobPull, req.GetBackend(), req.GetModel(), req.GetInsecure())
	if err != nil {
		return nil, err
	}
	return &adminv1.PullModelResponse{Job: toProto(j)}, nil
}

// DeleteModel queues a delete.
func (s *Service) DeleteModel(ctx context.Context, req *adminv1.DeleteModelRequest) (*adminv1.DeleteModelResponse, error) {
	j, err := s.queue(ctx, store.ModelJobDelete, req.GetBackend(), req.GetModel(), false)
	if err != nil {
		return nil, err
	}
	return &adminv1.DeleteModelResponse{Job: toProto(j)}, nil
}

func (s *Service) queue(ctx context.Context, kind, backend, model string, insecure bool) (store.ModelJob, error) {
	if err := ValidModelName(model); err != nil {
		return store.ModelJob{}, status.Error(codes.InvalidArgument, err.Error())
	}
	b, err := s.backend(backend)
	if err != nil {
		return store.ModelJob{}, err
	}
	if b.Engine != registry.EngineOllama {
		return store.ModelJob{}, status.Errorf(codes.FailedPrecondition,
			"backend %q runs %s: models can be pulled and deleted on Ollama backends only", b.Name, b.Engine)
	}
	actor, _ := store.ActorFromContext(ctx)
	j, err := s.st.CreateModelJob(ctx, store.ModelJobSpec{
		Kind: kind, BackendID: b.ID, BackendName: b.Name, Model: model, Insecure: insecure,
		MaxAttempts: s.opts.MaxAttempts, CreatedBy: actor.Username, CreatedByUserID: actor.UserID,
	})
	if err != nil {
		return store.ModelJob{}, err
	}
	// The runner cannot see the row before the call's transaction commits.
	s.st.AfterCommit(ctx, s.runner.Wake)
	return j, nil
}

// ValidModelName checks a model name as Ollama takes it: not empty, at most
// 255 bytes, no spaces or control characters.
func ValidModelName(model string) error {
	switch {
	case model == "":
		return fmt.Errorf("model is required")
	case len(model) > 255:
		return fmt.Errorf("model name is %d bytes long: at most 255", len(model))
	case strings.IndexFunc(model, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return fmt.Errorf("model name %q has spaces or control characters", model)
	}
	return nil
}

// backend finds a backend by id or name.
func (s *Service) backend(ref string) (registry.Backend, error) {
	ref = strings.TrimSpace(ref)
	if ref == "" {
		return registry.Backend{}, status.Error(codes.InvalidArgument, "backend (id or name) is required")
	}
	if id, err := strconv.ParseInt(ref, 10, 64); err == nil {
		if b, err := s.backends.GetBackend(id); err == nil {
			return b, nil
		}
	}
	for _, b := range s.backends.ListBackends() {
		if b.Name == ref {
			return b, nil
		}
	}
	return registry.Backend{}, status.Errorf(codes.NotFound, "backend %q not found", ref)
}

// GetModelJob returns one job.
func (s *Service) GetModelJob(ctx context.Context, req *adminv1.GetModelJobRequest) (*adminv1.GetModelJobResponse, error) {
	j, err := s.st.GetModelJob(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	if req.GetBackend() != "" {
		b, err := s.backend(req.GetBackend())
		if err != nil || b.ID != j.BackendID {
			return nil, status.Errorf(codes.NotFound, "model job %d not found on backend %q", req.GetId(), req.GetBackend())
		}
	}
	return &adminv1.GetModelJobResponse{Job: toProto(j)}, nil
}

// ListModelJobs lists jobs, newest first.
func (s *Service) ListModelJobs(ctx context.Context, req *adminv1.ListModelJobsRequest) (*adminv1.ListModelJobsResponse, error) {
	if req.GetLimit() < 0 || req.GetLimit() > 1000 {
		return nil, status.Errorf(codes.InvalidArgument, "limit %d: want 1 to 1000", req.GetLimit())
	}
	f := store.ModelJobFilter{State: req.GetState(), Limit: int(req.GetLimit())}
	if req.GetBackend() != "" {
		b, err := s.backend(req.GetBackend())
		if err != nil {
			return nil, err
		}
		f.BackendID = b.ID
	}
	rows, err := s.st.ListModelJobs(ctx, f)
	if err != nil {
		return nil, err
	}
	out := make([]*adminv1.ModelJob, len(rows))
	for i, j := range rows {
		out[i] = toProto(j)
	}
	return &adminv1.ListModelJobsResponse{Jobs: out}, nil
}

// WatchModelJob sends the job, then each change, until it is finished. It
// reads the database, so it follows a job whichever control plane runs it.
func (s *Service) WatchModelJob(req *adminv1.WatchModelJobRequest, stream grpc.ServerStreamingServer[adminv1.WatchModelJobResponse]) error {
	ctx := stream.Context()
	t := time.NewTicker(s.opts.WatchInterval)
	defer t.Stop()
	var last store.ModelJob
	for first := true; ; first = false {
		j, err := s.st.GetModelJob(ctx, req.GetId())
		if err != nil {
			return err
		}
		if first || !sameJob(j, last) {
			if err := stream.Send(&adminv1.WatchModelJobResponse{Job: toProto(j)}); err != nil {
				return err
			}
			last = j
		}
		if j.Finished() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

func sameJob(a, b store.ModelJob) bool {
	return a.State == b.State && a.Status == b.Status && a.Digest == b.Digest && a.Completed == b.Completed &&
		a.Total == b.Total && a.Attempts == b.Attempts && a.Error == b.Error
}

// CancelModelJob cancels a queued or running job.
func (s *Service) CancelModelJob(ctx context.Context, req *adminv1.CancelModelJobRequest) (*adminv1.CancelModelJobResponse, error) {
	j, err := s.st.GetModelJob(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	switch {
	case j.Finished():
	case j.State == store.ModelJobQueued:
		ok, err := s.st.CancelQueuedModelJob(ctx, j.ID, time.Now())
		if err != nil {
			return nil, err
		}
		if !ok && !s.runner.Cancel(j.ID) {
			return nil, status.Errorf(codes.Aborted, "model job %d changed state meanwhile: retry", j.ID)
		}
		if j, err = s.st.GetModelJob(ctx, j.ID); err != nil {
			return nil, err
		}
	default:
		if !s.runner.Cancel(j.ID) {
			return nil, status.Errorf(codes.Aborted, "model job %d is not running here yet: retry", j.ID)
		}
		// The runner records the cancellation within a moment; watch the job.
	}
	return &adminv1.CancelModelJobResponse{Job: toProto(j)}, nil
}

func toProto(j store.ModelJob) *adminv1.ModelJob {
	out := &adminv1.ModelJob{
		Id: j.ID, Kind: j.Kind, BackendId: j.BackendID, BackendName: j.BackendName, Model: j.Model,
		State: j.State, Status: j.Status, Digest: j.Digest, CompletedBytes: j.Completed, TotalBytes: j.Total,
		Attempts: int32(j.Attempts), MaxAttempts: int32(j.MaxAttempts), Error: j.Error, CreatedBy: j.CreatedBy,
		CreatedAt: timestamppb.New(j.CreatedAt), UpdatedAt: timestamppb.New(j.UpdatedAt), Insecure: j.Insecure,
	}
	if j.StartedAt != nil {
		out.StartedAt = timestamppb.New(*j.StartedAt)
	}
	if j.FinishedAt != nil {
		out.FinishedAt = timestamppb.New(*j.FinishedAt)
	}
	return out
}
