package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/mindrouter/mindrouter/dataplane/internal/audit"
	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/engine"
	"github.com/mindrouter/mindrouter/dataplane/internal/reasoning"
	"github.com/mindrouter/mindrouter/dataplane/internal/tokens"
)

// attempt is one lease: one engine call and exactly one release.
type attempt struct {
	relay  *Relay
	job    *job
	call   Call
	sink   Sink // nil for a non-streamed request
	prompt int64
	lease  Lease
	adm    Admission
	// progress, when set, takes the tokens used so far (see progressTracker).
	progress func(prompt, completion int64)

	start      time.Time
	ttft       time.Duration
	firstChunk bool
	sent       bool // something reached the client
	clientGone bool
	usage      *canonical.Usage // the engine's exact usage, if it gave one
	counter    tokens.Counter
	outcome    Outcome
	// think splits a leading <think> block out of each streamed choice.
	think map[int]*reasoning.Splitter
}

// run dispatches the request and releases the lease whatever happens, panics
// included.
func (a *attempt) run(ctx context.Context) (res *Result, err error) {
	a.start = a.relay.cfg.Now()
	a.outcome = OutcomeBackendError
	defer func() {
		if p := recover(); p != nil {
			a.outcome = OutcomeBackendError
			if a.clientGone || ctx.Err() != nil {
				a.outcome = OutcomeClientCancelled
			}
			a.release(ctx, fmt.Errorf("panic: %v", p))
			panic(p)
		}
		a.release(ctx, err)
	}()
	eng, ok := a.relay.engines[a.lease.Engine]
	if !ok {
		a.outcome = OutcomeRejected
		return nil, &canonical.Error{Kind: canonical.KindInternal, Message: "Internal server error",
			Err: fmt.Errorf("no engine for %s", a.lease.Engine)}
	}
	t := engine.Target{
		URL: a.lease.BackendURL, Model: a.lease.Model,
		ContextLength: a.lease.ContextLength, MaxOutputTokens: a.lease.MaxOutputTokens,
	}
	res = &Result{Admission: a.adm}
	switch {
	case a.job.pool != nil:
		a.usage, err = a.job.pool(ctx, eng, t, res)
		if err == nil {
			a.ttft = a.relay.cfg.Now().Sub(a.start)
		}
	case a.sink == nil:
		res.Response, err = a.chat(ctx, eng, t)
	default:
		a.sink.Admitted(a.adm)
		err = a.chatStream(ctx, eng, t)
	}
	a.outcome = a.classify(ctx, err)
	if err != nil {
		return nil, err
	}
	res.Usage = a.finalUsage()
	if a.usage == nil {
		u := res.Usage
		switch {
		case a.job.pool != nil:
			res.setPoolUsage(u)
		case res.Response != nil:
			res.Response.Usage = &u
		default:
			if err := a.deliver(canonical.Chunk{Usage: &u}); err != nil {
				a.outcome = OutcomeClientCancelled
				return nil, err
			}
		}
	}
	if res.Response != nil {
		// The answer is charged (the backend did the work) but not passed on
		// as a success when it broke the format the client asked for.
		err := a.job.check.Response(res.Response)
		a.call.Audit.Response(res.Response, structuredValid(a.call.Request, err))
		if err != nil {
			return nil, err
		}
	}
	return res, nil
}

// emit receives the engine's chunks.
func (a *attempt) emit(c canonical.Chunk) error {
	if !a.firstChunk {
		a.firstChunk = true
		a.ttft = a.relay.cfg.Now().Sub(a.start)
		a.relay.metrics.ttft.Observe(a.ttft.Seconds())
	}
	if c.Usage != nil {
		u := *c.Usage
		a.usage = &u
	}
	if !a.relay.cfg.KeepThinkTags {
		a.splitThink(&c)
	}
	a.counter.Add(&c)
	a.reportProgress()
	if c.Empty() {
		return nil
	}
	return a.deliver(c)
}

// reportProgress passes the tokens used so far to the lease's progress record:
// the engine's usage when it sent some, the count of the stream otherwise.
func (a *attempt) reportProgress() {
	if a.progress == nil {
		return
	}
	prompt, completion := a.prompt, a.counter.Tokens()
	if a.usage != nil && a.usage.Prompt > 0 {
		prompt = a.usage.Prompt
	}
	if a.usage != nil {
		completion = max(completion, a.usage.Completion)
	}
	a.progress(prompt, completion)
}

func (a *attempt) deliver(c canonical.Chunk) error {
	a.sent = true
	if err := a.sink.Chunk(c); err != nil {
		a.clientGone = true
		return fmt.Errorf("%w: %w", errClientGone, err)
	}
	a.call.Audit.Chunk(c)
	return nil
}

// classify decides the outcome reported to the control plane.
func (a *attempt) classify(ctx context.Context, err error) Outcome {
	switch {
	case err == nil:
		return OutcomeSuccess
	case a.clientGone || errors.Is(err, errClientGone) || ctx.Err() != nil:
		return OutcomeClientCancelled
	case engine.IsRetryable(err):
		return OutcomeBackendError
	}
	return OutcomeRejected
}

// finalUsage is the engine's exact usage, or an estimate marked as such.
func (a *attempt) finalUsage() canonical.Usage {
	if a.usage != nil && (a.usage.Prompt > 0 || a.usage.Completion > 0) {
		return *a.usage
	}
	return canonical.Usage{Prompt: a.prompt, Completion: a.counter.Tokens(), Estimated: true}
}

// release settles the lease once. A request that produced nothing is charged
// nothing; one that produced output is charged for it, exactly when the engine
// said, by estimate otherwise.
func (a *attempt) release(ctx context.Context, err error) {
	var usage canonical.Usage
	if a.outcome == OutcomeSuccess || a.firstChunk || a.usage != nil {
		usage = a.finalUsage()
	}
	rel := Release{
		LeaseID:  a.lease.ID,
		Outcome:  a.outcome,
		Usage:    usage,
		TTFT:     a.ttft,
		Duration: a.relay.cfg.Now().Sub(a.start),
		// The lease's identity lets a restarted control plane settle exactly once.
		RequestID: a.lease.RequestID,
		BackendID: a.lease.BackendID,
		UserID:    a.lease.UserID,
		Model:     a.lease.Model,
	}
	if err != nil {
		rel.Error = shortError(err)
	}
	a.relay.metrics.attempt(a.outcome).Inc()
	a.call.Audit.Attempted(audit.Attempt{BackendID: a.lease.BackendID, UserID: a.lease.UserID, Username: a.lease.Username,
		APIKeyID: a.lease.APIKeyID, Group: a.lease.Group, Queued: a.adm.Queued, TTFT: rel.TTFT, Usage: usage,
		Succeeded: a.outcome == OutcomeSuccess})
	if d := a.call.Deferred; d != nil && err == nil {
		// The reply is still to be written; settle after it (Call.Deferred).
		// Copies, so that only this path moves them to the heap.
		dctx, drel := context.WithoutCancel(ctx), rel
		d.add(func() { a.sendRelease(dctx, drel) })
		return
	}
	a.sendRelease(ctx, rel)
}

func (a *attempt) sendRelease(ctx context.Context, rel Release) {
	if rerr := a.relay.cp.Release(ctx, rel); rerr != nil {
		a.relay.log.WarnContext(ctx, "release failed", slog.String("request_id", a.call.RequestID),
			slog.String("lease_id", rel.LeaseID), slog.Any("error", rerr))
	}
}

// shortError is the short, non-secret failure description sent with a release;
// no error the data plane makes carries prompt content.
func shortError(err error) string {
	var ee *engine.Error
	var ce *canonical.Error
	msg := err.Error()
	switch {
	case errors.Is(err, errClientGone):
		msg = "client went away"
	case errors.As(err, &ee):
		msg = ee.Error()
	case errors.As(err, &ce):
		msg = ce.Message
	}
	if len(msg) > 256 {
		msg = msg[:256]
	}
	return msg
}

// structuredValid is whether an answer met the structured output its request
// asked for; nil when it asked for none.
func structuredValid(req *canonical.Request, checkErr error) *bool {
	if req == nil || req.ResponseFormat == nil || req.ResponseFormat.Type == canonical.FormatText {
		return nil
	}
	ok := checkErr == nil
	return &ok
}
