package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mindrouter/mindrouter/dataplane/internal/audit"
	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/engine"
	"github.com/mindrouter/mindrouter/dataplane/internal/structured"
	"github.com/mindrouter/mindrouter/dataplane/internal/tokens"
)

// progressTracker is implemented by an Admitter that carries each lease's
// progress to the control plane (cpclient.Client, on its heartbeats), so that
// a lease whose replica dies is charged what it used rather than its whole
// reservation.
type progressTracker interface {
	ProgressReporter(leaseID string) func(prompt, completion int64)
}

// Config tunes the relay.
type Config struct {
	// MaxAttempts is how many backends one request may try before the first
	// byte reaches the client; default 3.
	MaxAttempts int
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Images fetches the images a chat request gives by URL (imagefetch.Fetcher);
	// nil leaves them as URLs, which an Ollama engine then refuses.
	Images ImageResolver
	// KeepThinkTags turns off moving a leading <think>…</think> block of an
	// answer's content into its reasoning.
	KeepThinkTags bool
}

// ImageResolver replaces the images of a request given by URL with inline
// data (imagefetch.Fetcher). A refusal is a *canonical.Error.
type ImageResolver interface {
	Resolve(ctx context.Context, req *canonical.Request) error
}

// Relay runs requests: admit, dispatch, stream, release.
type Relay struct {
	cp      Admitter
	engines map[Engine]engine.Engine
	cfg     Config
	log     *slog.Logger
	metrics *metrics
}

// New returns a relay dispatching leases to the engine named by each lease.
// Metrics are registered on reg when it is not nil.
func New(cp Admitter, engines map[Engine]engine.Engine, cfg Config, log *slog.Logger, reg prometheus.Registerer) (*Relay, error) {
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 3
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	return &Relay{cp: cp, engines: engines, cfg: cfg, log: log, metrics: m}, nil
}

// Call is one client request.
type Call struct {
	// RequestID is unique per client request and the same across attempts.
	RequestID string
	// Credential is the client's API key as presented.
	Credential string
	// Endpoint is the client-facing path, e.g. /v1/chat/completions.
	Endpoint string
	// Request is the chat request of Chat and ChatStream; Embed, Rerank and
	// Score take theirs as an argument and ignore it.
	Request *canonical.Request
	// Operation is what the control plane is asked to admit:
	// OperationCompletion for legacy text completions served as chat;
	// zero means OperationChat. Embed, Rerank and Score set their own.
	Operation Operation
	// Deferred, when set, holds the release of each lease that served the
	// request successfully until the caller's Deferred.Send, which the caller
	// must call exactly once after the reply is written (or those leases stay
	// unsettled until the control plane expires them). Nil sends every
	// release at once.
	Deferred *Deferred
	// Audit, when set, is filled with the request's audit record as it runs:
	// the request, each attempt, the answer and the error. Its gate is asked
	// before admission (a full audit spool that fails closed refuses the
	// request).
	Audit *audit.Entry
}

// Admission is what a surface learns when a lease is granted.
type Admission struct {
	// Attempt is 1 for the first backend, 2 for the next, ….
	Attempt int
	// QueuePosition is the position in the model's queue when the request was
	// enqueued; 0 when it was dispatched at once.
	QueuePosition int32
	// Queued is the time spent waiting in the queue.
	Queued time.Duration
	// Backend is the backend's name.
	Backend string
	// Simulated is true when the backend is the engine simulator.
	Simulated bool
}

// Sink receives a streamed answer.
type Sink interface {
	// Admitted is called after each granted lease, before that attempt's first chunk.
	Admitted(Admission)
	// Chunk delivers one chunk to the client. An error means the client is gone
	// and ends the request.
	Chunk(canonical.Chunk) error
}

// Result is how a request ended.
type Result struct {
	// Response is the whole answer of a non-streamed chat request (with Usage set).
	Response *canonical.Response
	// Embedding, Rerank and Score are the answers of Embed, Rerank and Score
	// (with Usage set, estimated when the engine gave none).
	Embedding *canonical.EmbeddingResponse
	Rerank    *canonical.RerankResponse
	Score     *canonical.ScoreResponse
	// Speech and Transcription are the answers of Speak and Transcribe (with
	// Usage set by the rule of each).
	Speech        *canonical.SpeechResponse
	Transcription *canonical.Transcription
	// Usage is what was reported to the control plane.
	Usage canonical.Usage
	// Admission describes the lease that served the request.
	Admission Admission
}

// errClientGone marks a sink failure: the client went away.
var errClientGone = errors.New("client went away")

// Chat runs a non-streamed request. Every retryable backend failure is retried
// on another backend, up to MaxAttempts. Images given by URL are fetched (once,
// after the first admission), a leading <think> block in the answer becomes
// reasoning, and an answer that breaks the requested structured output is a
// KindUnprocessable error (canonical.CodeInvalidOutput) although its tokens
// are charged. Errors convert with canonical.AsError.
func (r *Relay) Chat(ctx context.Context, call Call) (*Result, error) {
	j, err := r.chatJob(call, nil)
	if err != nil {
		return nil, err
	}
	return r.run(ctx, j)
}

// ChatStream runs a streamed request, delivering chunks to sink. A retryable
// backend failure is retried on another backend only while nothing has reached
// the client; after that the error is returned and the surface ends the stream
// with its dialect's error event. The stream always ends with a usage chunk
// (the engine's, or an estimate marked Estimated). A streamed answer cannot be
// checked against a structured output format before it is sent, so it is not.
func (r *Relay) ChatStream(ctx context.Context, call Call, sink Sink) (*Result, error) {
	j, err := r.chatJob(call, sink)
	if err != nil {
		return nil, err
	}
	return r.run(ctx, j)
}

func (r *Relay) chatJob(call Call, sink Sink) (*job, error) {
	req := call.Request
	check, err := structured.New(req.ResponseFormat)
	if err != nil {
		return nil, err
	}
	op := call.Operation
	if op == OperationUnspecified {
		op = OperationChat
	}
	return &job{call: call, op: op, model: req.Model, prompt: tokens.Prompt(req), needs: Needs(req),
		maxOut: req.Sampling.MaxTokens, stream: req.Stream, sink: sink, check: check}, nil
}

func (r *Relay) run(ctx context.Context, j *job) (res *Result, err error) {
	if err := j.call.Audit.Admit(); err != nil {
		return nil, err
	}
	j.call.Audit.Request(j.model, j.stream, j.call.Request)
	defer func() { j.call.Audit.Failed(err) }()
	var excluded []int64
	var lastErr error
	for n := 1; n <= r.cfg.MaxAttempts; n++ {
		admitStart := r.cfg.Now()
		grant, err := r.admit(ctx, j.sink, j.admitRequest(n, excluded))
		r.metrics.admitSeconds.Observe(r.cfg.Now().Sub(admitStart).Seconds())
		if err != nil {
			if lastErr != nil && noOtherBackend(err) {
				return nil, allFailed(n-1, lastErr)
			}
			return nil, err
		}
		a := &attempt{relay: r, job: j, call: j.call, sink: j.sink, prompt: j.prompt, lease: grant.Lease, progress: r.progressOf(grant.Lease.ID),
			adm: Admission{Attempt: n, QueuePosition: grant.QueuePosition, Queued: grant.Queued,
				Backend: grant.Lease.BackendName, Simulated: grant.Lease.Simulated}}
		res, err := a.run(ctx)
		if err == nil {
			return res, nil
		}
		if a.outcome != OutcomeBackendError || a.sent {
			return nil, err
		}
		lastErr = err
		excluded = append(excluded, a.lease.BackendID)
		if n < r.cfg.MaxAttempts {
			r.metrics.retries.Inc()
			r.log.DebugContext(ctx, "backend failed before the first byte; retrying elsewhere",
				slog.String("request_id", j.call.RequestID), slog.String("backend", a.adm.Backend), slog.Any("error", err))
		}
	}
	return nil, allFailed(r.cfg.MaxAttempts, lastErr)
}

// Needs lists the capabilities a request needs from its model.
func Needs(req *canonical.Request) []Capability {
	var needs []Capability
	if req.HasImages() {
		needs = append(needs, CapabilityVision)
	}
	if len(req.Tools) > 0 && (req.ToolChoice == nil || req.ToolChoice.Mode != canonical.ToolChoiceNone) {
		needs = append(needs, CapabilityTools)
	}
	if req.ResponseFormat != nil {
		needs = append(needs, CapabilityStructuredOutput)
	}
	if req.Think != nil && req.Think.Enabled {
		needs = append(needs, CapabilityThinking)
	}
	return needs
}

// noOtherBackend reports whether a retry's Admit failed because no backend is
// left, in which case the client hears about the backend failure instead.
func noOtherBackend(err error) bool {
	var reason Reason
	return errors.As(err, &reason) && reason.NoBackend()
}

func allFailed(attempts int, last error) error {
	msg := canonical.AsError(last).Message
	if attempts > 1 {
		msg = fmt.Sprintf("all %d backend attempts failed; last error: %s", attempts, msg)
	}
	return &canonical.Error{Kind: canonical.KindBackend, Code: "backend_error", Message: msg, Err: last}
}

// progressOf returns where an attempt reports its lease's progress, nil when
// nobody listens.
func (r *Relay) progressOf(leaseID string) func(prompt, completion int64) {
	if pt, ok := r.cp.(progressTracker); ok {
		return pt.ProgressReporter(leaseID)
	}
	return nil
}
