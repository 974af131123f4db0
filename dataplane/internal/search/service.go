package search

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mindrouter/mindrouter/dataplane/internal/audit"
	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/relay"
)

// Model is the name a search is admitted and accounted under.
const Model = "web_search"

// Config tunes the service.
type Config struct {
	// Charge is the tokens one search costs (quota debit); default 50.
	Charge int64
	// DefaultResults is the result count when the client gives none; default 10.
	DefaultResults int
	// Timeout bounds one provider call; default 15s.
	Timeout time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Service runs searches: admit, ask the provider, release, audit.
type Service struct {
	cp       relay.Admitter
	provider Provider
	cfg      Config
	log      *slog.Logger
	metrics  *metrics
}

// New returns a service asking provider (nil: searching is disabled and
// answers 503). Metrics are registered on reg when it is not nil.
func New(cp relay.Admitter, provider Provider, cfg Config, log *slog.Logger, reg prometheus.Registerer) (*Service, error) {
	if cfg.Charge <= 0 {
		cfg.Charge = 50
	}
	if cfg.DefaultResults <= 0 {
		cfg.DefaultResults = 10
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 15 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	return &Service{cp: cp, provider: provider, cfg: cfg, log: log, metrics: m}, nil
}

// DefaultResults is the result count of a request that gives none.
func (s *Service) DefaultResults() int { return s.cfg.DefaultResults }

// Response is a search's answer.
type Response struct {
	Query        string   `json:"query"`
	Provider     string   `json:"provider"`
	Results      []Result `json:"results"`
	TotalResults int      `json:"total_results"`
}

// errDisabled answers a search when no provider is configured.
var errDisabled = &canonical.Error{Kind: canonical.KindUnavailable, Code: "search_disabled",
	Message: "web search is not configured on this gateway"}

// Search runs one search for call's credential. call.Audit, when set, is
// filled (query as the request, the normalised results as the response).
// Errors are *canonical.Error or convert with canonical.AsError.
func (s *Service) Search(ctx context.Context, call relay.Call, req Request) (res *Response, err error) {
	if err := call.Audit.Admit(); err != nil {
		return nil, err
	}
	reqJSON, _ := json.Marshal(req)
	call.Audit.Exchange(Model, string(reqJSON), req.Query, "")
	defer func() { call.Audit.Failed(err) }()
	grant, err := s.cp.Admit(ctx, relay.AdmitRequest{
		RequestID: call.RequestID, Credential: call.Credential, Model: Model, Operation: relay.OperationSearch,
		PromptTokensEstimate: s.cfg.Charge, Attempt: 1, Endpoint: call.Endpoint,
	})
	if err != nil {
		return nil, err
	}
	if s.provider == nil {
		// Admitted first, so that a disabled search still tells a bad key apart.
		_ = s.cp.Release(ctx, relay.Release{LeaseID: grant.Lease.ID, Outcome: relay.OutcomeRejected,
			RequestID: call.RequestID, UserID: grant.Lease.UserID, Model: Model})
		return nil, errDisabled
	}
	start := s.cfg.Now()
	pctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	results, perr := s.provider.Search(pctx, req.Query, req.MaxResults)
	cancel()
	took := s.cfg.Now().Sub(start)
	rel := relay.Release{LeaseID: grant.Lease.ID, TTFT: took, Duration: took, RequestID: call.RequestID, UserID: grant.Lease.UserID, Model: Model}
	var usage canonical.Usage
	switch {
	case perr == nil:
		rel.Outcome = relay.OutcomeSuccess
		usage = canonical.Usage{Prompt: s.cfg.Charge}
	case errors.Is(perr, context.Canceled) || ctx.Err() != nil:
		rel.Outcome = relay.OutcomeClientCancelled
	default:
		rel.Outcome, rel.Error = relay.OutcomeBackendError, perr.Error()
	}
	rel.Usage = usage
	if rerr := s.cp.Release(ctx, rel); rerr != nil {
		s.log.WarnContext(ctx, "search release failed", slog.String("request_id", call.RequestID), slog.Any("error", rerr))
	}
	call.Audit.Attempted(audit.Attempt{UserID: grant.Lease.UserID, Username: grant.Lease.Username, APIKeyID: grant.Lease.APIKeyID,
		Group: grant.Lease.Group, TTFT: took, Usage: usage, Succeeded: perr == nil})
	s.metrics.observe(s.provider.Name(), perr, took)
	if perr != nil {
		return nil, clientError(perr)
	}
	res = &Response{Query: req.Query, Provider: s.provider.Name(), Results: results, TotalResults: len(results)}
	if b, err := json.Marshal(res.Results); err == nil {
		call.Audit.Exchange(Model, string(reqJSON), req.Query, string(b))
	}
	return res, nil
}

// clientError maps a provider failure to what the client is told: the
// provider refusing the gateway's key is the gateway's problem (502), its
// rate limit is the client's (429 with its Retry-After), silence is a 504.
func clientError(err error) error {
	var pe *ProviderError
	if !errors.As(err, &pe) {
		return err
	}
	ce := &canonical.Error{Kind: canonical.KindBackend, Code: "search_provider_error", Status: http.StatusBadGateway, Err: err}
	switch {
	case pe.Timeout:
		ce.Status, ce.Code = http.StatusGatewayTimeout, "search_provider_timeout"
		ce.Message = fmt.Sprintf("the search provider %s did not answer in time", pe.Provider)
	case pe.Status == http.StatusUnauthorized || pe.Status == http.StatusForbidden:
		ce.Message = fmt.Sprintf("the search provider %s refused the gateway's credentials (HTTP %d); ask an administrator to check its API key", pe.Provider, pe.Status)
	case pe.Status == http.StatusTooManyRequests:
		ce.Kind, ce.Status, ce.Code = canonical.KindRateLimited, http.StatusTooManyRequests, "search_provider_rate_limited"
		ce.Wait = max(pe.RetryAfter, time.Second)
		ce.Message = fmt.Sprintf("the search provider %s is rate limiting the gateway; retry later", pe.Provider)
	case pe.Status != 0:
		ce.Message = fmt.Sprintf("the search provider %s answered HTTP %d", pe.Provider, pe.Status)
	default:
		ce.Message = fmt.Sprintf("the search provider %s could not be reached or sent an unreadable answer", pe.Provider)
	}
	return ce
}
