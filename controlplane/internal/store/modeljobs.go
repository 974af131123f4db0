package store

import (
	"context"
	"fmt"
	"time"

	"github.com/mindrouter/mindrouter/ent"
	"github.com/mindrouter/mindrouter/ent/modeljob"
)

// Model job kinds and states (see ent/schema/modeljob.go).
const (
	ModelJobPull   = "pull"
	ModelJobDelete = "delete"

	ModelJobQueued    = "queued"
	ModelJobRunning   = "running"
	ModelJobSucceeded = "succeeded"
	ModelJobFailed    = "failed"
	ModelJobCancelled = "cancelled"
)

// ModelJob is one pull or delete of a model on an Ollama backend.
type ModelJob struct {
	ID          int64
	Kind        string
	BackendID   int64
	BackendName string
	Model       string
	Insecure    bool
	State       string
	Status      string
	Digest      string
	Completed   int64
	Total       int64
	Attempts    int
	MaxAttempts int
	Error       string
	CreatedBy   string
	CreatedAt   time.Time
	UpdatedAt   time.Time
	StartedAt   *time.Time
	FinishedAt  *time.Time
}

// Finished reports whether the job is in a final state.
func (j ModelJob) Finished() bool {
	return j.State == ModelJobSucceeded || j.State == ModelJobFailed || j.State == ModelJobCancelled
}

// ModelJobSpec is a job to queue.
type ModelJobSpec struct {
	Kind        string
	BackendID   int64
	BackendName string
	Model       string
	Insecure    bool
	MaxAttempts int
	// CreatedBy names who asked; CreatedByUserID is 0 when not a user.
	CreatedBy       string
	CreatedByUserID int64
}

// ModelJobProgress is what a running job reports.
type ModelJobProgress struct {
	Status    string
	Digest    string
	Completed int64
	Total     int64
	Attempts  int
	// Error is the last attempt's failure while the job retries.
	Error string
}

// ModelJobFilter selects jobs to list. State "active" means queued or running.
// A zero Limit means 100.
type ModelJobFilter struct {
	State     string
	BackendID int64
	Limit     int
}

// CreateModelJob queues a job.
func (s *Store) CreateModelJob(ctx context.Context, spec ModelJobSpec) (ModelJob, error) {
	op := fmt.Sprintf("queue %s of %s", spec.Kind, spec.Model)
	c := s.c(ctx).ModelJob.Create().
		SetKind(modeljob.Kind(spec.Kind)).SetBackendID(spec.BackendID).SetBackendName(clip(spec.BackendName, 255)).
		SetModel(spec.Model).SetInsecure(spec.Insecure).SetMaxAttempts(max(spec.MaxAttempts, 1)).
		SetCreatedBy(clip(spec.CreatedBy, 255)).SetStatus(ModelJobQueued)
	if spec.CreatedByUserID != 0 {
		c = c.SetCreatedByUserID(spec.CreatedByUserID)
	}
	j, err := c.Save(ctx)
	if err != nil {
		return ModelJob{}, dbErr(op, err)
	}
	return toModelJob(j), nil
}

// GetModelJob returns one job.
func (s *Store) GetModelJob(ctx context.Context, id int64) (ModelJob, error) {
	j, err := s.c(ctx).ModelJob.Get(ctx, int(id))
	if err != nil {
		return ModelJob{}, dbErr(fmt.Sprintf("get model job %d", id), err)
	}
	return toModelJob(j), nil
}

// ListModelJobs returns jobs, newest first.
func (s *Store) ListModelJobs(ctx context.Context, f ModelJobFilter) ([]ModelJob, error) {
	q := s.c(ctx).ModelJob.Query()
	switch f.State {
	case "":
	case "active":
		q = q.Where(modeljob.StateIn(ModelJobQueued, ModelJobRunning))
	default:
		if err := modeljob.StateValidator(modeljob.State(f.State)); err != nil {
			return nil, invalid("list model jobs", "unknown state %q (want queued, running, succeeded, failed, cancelled or active)", f.State)
		}
		q = q.Where(modeljob.StateEQ(modeljob.State(f.State)))
	}
	if f.BackendID != 0 {
		q = q.Where(modeljob.BackendIDEQ(f.BackendID))
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	rows, err := q.Order(ent.Desc(modeljob.FieldID)).Limit(limit).All(ctx)
	if err != nil {
		return nil, dbErr("list model jobs", err)
	}
	out := make([]ModelJob, len(rows))
	for i, j := range rows {
		out[i] = toModelJob(j)
	}
	return out, nil
}

// QueuedModelJobs returns the queued jobs, oldest first, for the runner.
func (s *Store) QueuedModelJobs(ctx context.Context, limit int) ([]ModelJob, error) {
	rows, err := s.c(ctx).ModelJob.Query().Where(modeljob.StateEQ(ModelJobQueued)).
		Order(ent.Asc(modeljob.FieldID)).Limit(limit).All(ctx)
	if err != nil {
		return nil, dbErr("list queued model jobs", err)
	}
	out := make([]ModelJob, len(rows))
	for i, j := range rows {
		out[i] = toModelJob(j)
	}
	return out, nil
}

// StartModelJob moves a queued job to running; ok is false when it is no
// longer queued (cancelled meanwhile, or taken by another runner).
func (s *Store) StartModelJob(ctx context.Context, id int64, at time.Time) (ModelJob, bool, error) {
	op := fmt.Sprintf("start model job %d", id)
	n, err := s.c(ctx).ModelJob.Update().
		Where(modeljob.IDEQ(int(id)), modeljob.StateEQ(ModelJobQueued)).
		SetState(ModelJobRunning).SetStartedAt(at.UTC()).SetStatus("starting").
		Save(ctx)
	if err != nil {
		return ModelJob{}, false, dbErr(op, err)
	}
	if n == 0 {
		return ModelJob{}, false, nil
	}
	j, err := s.GetModelJob(ctx, id)
	return j, err == nil, err
}

// ReportModelJob records a running job's progress; it changes nothing once
// the job has left the running state.
func (s *Store) ReportModelJob(ctx context.Context, id int64, p ModelJobProgress) error {
	err := s.c(ctx).ModelJob.Update().
		Where(modeljob.IDEQ(int(id)), modeljob.StateEQ(ModelJobRunning)).
		SetStatus(clip(p.Status, 255)).SetDigest(clip(p.Digest, 128)).
		SetCompletedBytes(max(p.Completed, 0)).SetTotalBytes(max(p.Total, 0)).
		SetAttempts(p.Attempts).SetError(clip(p.Error, 1024)).
		Exec(ctx)
	return dbErr(fmt.Sprintf("report model job %d", id), err)
}

// FinishModelJob moves a queued or running job to a final state with its
// last progress; a job already finished is left as it is.
func (s *Store) FinishModelJob(ctx context.Context, id int64, state string, p ModelJobProgress, at time.Time) error {
	if state != ModelJobSucceeded && state != ModelJobFailed && state != ModelJobCancelled {
		return invalid("finish model job", "state %q is not final", state)
	}
	err := s.c(ctx).ModelJob.Update().
		Where(modeljob.IDEQ(int(id)), modeljob.StateIn(ModelJobQueued, ModelJobRunning)).
		SetState(modeljob.State(state)).SetFinishedAt(at.UTC()).
		SetStatus(clip(p.Status, 255)).SetDigest(clip(p.Digest, 128)).
		SetCompletedBytes(max(p.Completed, 0)).SetTotalBytes(max(p.Total, 0)).
		SetAttempts(p.Attempts).SetError(clip(p.Error, 1024)).
		Exec(ctx)
	return dbErr(fmt.Sprintf("finish model job %d", id), err)
}

// CancelQueuedModelJob cancels a job that has not started; ok is false when
// it is not queued.
func (s *Store) CancelQueuedModelJob(ctx context.Context, id int64, at time.Time) (bool, error) {
	n, err := s.c(ctx).ModelJob.Update().
		Where(modeljob.IDEQ(int(id)), modeljob.StateEQ(ModelJobQueued)).
		SetState(ModelJobCancelled).SetFinishedAt(at.UTC()).SetStatus("cancelled before it started").
		Save(ctx)
	if err != nil {
		return false, dbErr(fmt.Sprintf("cancel model job %d", id), err)
	}
	return n > 0, nil
}

// RequeueRunningModelJobs puts the jobs a previous leader left running back
// in the queue, for a new leader to resume; it returns how many.
func (s *Store) RequeueRunningModelJobs(ctx context.Context) (int, error) {
	n, err := s.c(ctx).ModelJob.Update().
		Where(modeljob.StateEQ(ModelJobRunning)).
		SetState(ModelJobQueued).SetStatus("resumed: the control plane that ran it stopped").
		Save(ctx)
	return n, dbErr("requeue running model jobs", err)
}

func toModelJob(j *ent.ModelJob) ModelJob {
	return ModelJob{
		ID: int64(j.ID), Kind: string(j.Kind), BackendID: j.BackendID, BackendName: j.BackendName, Model: j.Model,
		Insecure: j.Insecure, State: string(j.State), Status: j.Status, Digest: j.Digest,
		Completed: j.CompletedBytes, Total: j.TotalBytes, Attempts: j.Attempts, MaxAttempts: j.MaxAttempts,
		Error: j.Error, CreatedBy: j.CreatedBy, CreatedAt: utc(j.CreatedAt), UpdatedAt: utc(j.UpdatedAt),
		StartedAt: utcPtr(j.StartedAt), FinishedAt: utcPtr(j.FinishedAt),
	}
}
