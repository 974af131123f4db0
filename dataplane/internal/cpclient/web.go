package cpclient

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	accountv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/account/v1"
	adminv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/admin/v1"
	auditv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/audit/v1"
	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

// Metadata keys of a browser session, as the control plane's interceptor
// reads them.
const (
	sessionMetadataKey = "x-mindrouter-session"
	csrfMetadataKey    = "x-mindrouter-csrf"
)

// Web is the web pages' client of the control plane. The public calls
// (cluster status, sign-in providers) authenticate with the cluster token;
// every other call carries the browser's session (and, for changes, its CSRF
// token) and nothing else, so the control plane authorizes the person, not
// this replica. It returns plain Go values: the pages never see a generated
// type.
type Web struct {
	token    string
	timeout  time.Duration
	status   controlplanev1.StatusServiceClient
	signin   controlplanev1.SignInServiceClient
	account  accountv1.AccountServiceClient
	registry adminv1.RegistryServiceClient
	identity adminv1.IdentityServiceClient
	sched    adminv1.SchedulerServiceClient
	conv     accountv1.ConversationServiceClient
	audit    auditv1.AuditServiceClient
	system   adminv1.SystemServiceClient
	catalog  adminv1.CatalogServiceClient
	// telemetry reads the telemetry history and the energy report.
	telemetry adminv1.TelemetryHistoryServiceClient
}

// NewWeb returns the web client over conn; timeout bounds each call (default 10s).
func NewWeb(conn grpc.ClientConnInterface, clusterToken string, timeout time.Duration) *Web {
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	return &Web{
		token: clusterToken, timeout: timeout,
		status: controlplanev1.NewStatusServiceClient(conn), signin: controlplanev1.NewSignInServiceClient(conn),
		account: accountv1.NewAccountServiceClient(conn), registry: adminv1.NewRegistryServiceClient(conn),
		identity: adminv1.NewIdentityServiceClient(conn), sched: adminv1.NewSchedulerServiceClient(conn),
		conv:      accountv1.NewConversationServiceClient(conn),
		audit:     auditv1.NewAuditServiceClient(conn),
		system:    adminv1.NewSystemServiceClient(conn),
		catalog:   adminv1.NewCatalogServiceClient(conn),
		telemetry: adminv1.NewTelemetryHistoryServiceClient(conn),
	}
}

// Caller is the browser a call is made for: its session cookie and the CSRF
// token it sent (empty for reads).
type Caller struct {
	Session string
	CSRF    string
}

// WebError is a refused or failed call, in HTTP terms for the pages.
type WebError struct {
	// Status is the HTTP status the page answers with.
	Status int
	// Message is safe to show: the control plane's words for refusals, a
	// generic sentence when it could not be reached.
	Message string
}

func (e *WebError) Error() string { return e.Message }

// webError converts a gRPC error into a WebError.
func webError(err error) error {
	if err == nil {
		return nil
	}
	st := status.Convert(err)
	code := http.StatusServiceUnavailable
	msg := st.Message()
	switch st.Code() {
	case codes.Unauthenticated:
		code = http.StatusUnauthorized
	case codes.PermissionDenied:
		code = http.StatusForbidden
	case codes.InvalidArgument, codes.FailedPrecondition, codes.OutOfRange:
		code = http.StatusBadRequest
	case codes.NotFound:
		code = http.StatusNotFound
	case codes.AlreadyExists, codes.Aborted:
		code = http.StatusConflict
	case codes.ResourceExhausted:
		code = http.StatusTooManyRequests
	default:
		msg = "the control plane is unavailable; try again shortly"
	}
	return &WebError{Status: code, Message: msg}
}

// HTTPStatus returns the status a page should answer err with.
func HTTPStatus(err error) int {
	var we *WebError
	if errors.As(err, &we) {
		return we.Status
	}
	return http.StatusInternalServerError
}

func (w *Web) public(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	return metadata.AppendToOutgoingContext(ctx, TokenMetadataKey, w.token), cancel
}

func (w *Web) as(ctx context.Context, c Caller) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	return withCaller(ctx, c), cancel
}

// withCaller carries the browser's session (and CSRF token) to the control plane.
func withCaller(ctx context.Context, c Caller) context.Context {
	kv := []string{sessionMetadataKey, c.Session}
	if c.CSRF != "" {
		kv = append(kv, csrfMetadataKey, c.CSRF)
	}
	return metadata.AppendToOutgoingContext(ctx, kv...)
}

func ts(t *timestamppb.Timestamp) time.Time {
	if t == nil || (t.GetSeconds() == 0 && t.GetNanos() == 0) {
		return time.Time{}
	}
	return t.AsTime()
}

// CatalogEntry is one model of the public catalog.
type CatalogEntry struct {
	Name, Family                string
	ContextLength               int64
	Capabilities                []string
	Engines                     []string
	HealthyBackends             int
	Loaded, Simulated           bool
	ParameterSize, Quantization string
}

// ClusterStatus is what the public status page shows.
type ClusterStatus struct {
	BackendsTotal, BackendsHealthy, BackendsDisabled, BackendsDraining, CircuitsOpen int
	NodesTotal, NodesOnline, Queued, InFlight                                        int
	TokensToday                                                                      int64
	// TokensTotal is every token ever served (the control plane's cached
	// aggregate, at most 30 s old).
	TokensTotal     int64
	TokensPerSecond float64
	Models          []CatalogEntry
	// Offline is true while an administrator has taken the service offline;
	// OfflineMessage is what clients are told.
	Offline        bool
	OfflineMessage string
}

// capName is a capability's lower-case name: "vision", "tools", ...
func capName(c controlplanev1.Capability) string {
	return strings.ToLower(strings.TrimPrefix(c.String(), "CAPABILITY_"))
}

// Status returns the cluster's public status.
func (w *Web) Status(ctx context.Context) (ClusterStatus, error) {
	ctx, cancel := w.public(ctx)
	defer cancel()
	r, err := w.status.GetClusterStatus(ctx, &controlplanev1.GetClusterStatusRequest{})
	if err != nil {
		return ClusterStatus{}, webError(err)
	}
	out := ClusterStatus{
		BackendsTotal: int(r.GetBackendsTotal()), BackendsHealthy: int(r.GetBackendsHealthy()),
		BackendsDisabled: int(r.GetBackendsDisabled()), BackendsDraining: int(r.GetBackendsDraining()),
		CircuitsOpen: int(r.GetCircuitsOpen()), NodesTotal: int(r.GetNodesTotal()), NodesOnline: int(r.GetNodesOnline()),
		Queued: int(r.GetQueued()), InFlight: int(r.GetInFlight()),
		TokensToday: r.GetTokensToday(), TokensTotal: r.GetTokensTotal(), TokensPerSecond: r.GetTokensPerSecond(),
		Offline: r.GetOffline(), OfflineMessage: r.GetOfflineMessage(),
	}
	for _, m := range r.GetModels() {
		e := CatalogEntry{Name: m.GetName(), Family: m.GetFamily(), ContextLength: m.GetContextLength(),
			HealthyBackends: int(m.GetHealthyBackends()), Loaded: m.GetLoaded(), Simulated: m.GetSimulated(),
			ParameterSize: m.GetParameterSize(), Quantization: m.GetQuantization()}
		for _, c := range m.GetCapabilities() {
			e.Capabilities = append(e.Capabilities, capName(c))
		}
		for _, en := range m.GetEngines() {
			e.Engines = append(e.Engines, strings.ToLower(strings.TrimPrefix(en.String(), "ENGINE_")))
		}
		out.Models = append(out.Models, e)
	}
	return out, nil
}

// Provider is a configured single-sign-on provider.
type Provider struct{ Name, DisplayName string }

// Providers lists the sign-in providers.
func (w *Web) Providers(ctx context.Context) ([]Provider, error) {
	ctx, cancel := w.public(ctx)
	defer cancel()
	r, err := w.signin.ListProviders(ctx, &controlplanev1.ListProvidersRequest{})
	if err != nil {
		return nil, webError(err)
	}
	out := make([]Provider, len(r.GetProviders()))
	for i, p := range r.GetProviders() {
		out[i] = Provider{Name: p.GetName(), DisplayName: p.GetDisplayName()}
	}
	return out, nil
}

// Me is the signed-in person.
type Me struct {
	UserID                    int64
	Username, FullName, Email string
	Group                     string
	// Role is admin, auditor or user.
	Role string
	// CSRF is the session's token for state-changing calls.
	CSRF           string
	SessionExpires time.Time
}

// WhoAmI resolves the caller's session.
func (w *Web) WhoAmI(ctx context.Context, c Caller) (Me, error) {
	ctx, cancel := w.as(ctx, c)
	defer cancel()
	r, err := w.account.WhoAmI(ctx, &accountv1.WhoAmIRequest{})
	if err != nil {
		return Me{}, webError(err)
	}
	u := r.GetUser()
	return Me{UserID: u.GetId(), Username: u.GetUsername(), FullName: u.GetFullName(), Email: u.GetEmail(),
		Group: u.GetGroupName(), Role: r.GetRole(), CSRF: r.GetCsrfToken(), SessionExpires: ts(r.GetSessionExpiresAt())}, nil
}

// Usage is the caller's token usage now.
type Usage struct {
	TokensUsed, LifetimeTokensUsed, TokensReserved, TokenBudget int64
	PeriodStart, PeriodEnd                                      time.Time
	RPMLimit, RequestsLastMinute, InFlight                      int
}

// MyUsage returns the caller's usage.
func (w *Web) MyUsage(ctx context.Context, c Caller) (Usage, error) {
	ctx, cancel := w.as(ctx, c)
	defer cancel()
	r, err := w.account.GetMyUsage(ctx, &accountv1.GetMyUsageRequest{})
	if err != nil {
		return Usage{}, webError(err)
	}
	return Usage{TokensUsed: r.GetTokensUsed(), LifetimeTokensUsed: r.GetLifetimeTokensUsed(),
		TokensReserved: r.GetTokensReserved(), TokenBudget: r.GetTokenBudget(),
		PeriodStart: ts(r.GetPeriodStart()), PeriodEnd: ts(r.GetPeriodEnd()),
		RPMLimit: int(r.GetRpmLimit()), RequestsLastMinute: int(r.GetRequestsLastMinute()), InFlight: int(r.GetInFlight())}, nil
}

// APIKey describes a key (never its secret).
type APIKey struct {
	ID                     int64
	Username, Name, Prefix string
	Status                 string
	ExpiresAt, LastUsedAt  time.Time
	CreatedAt              time.Time
	UsageCount             int64
	IsService              bool
}

func apiKey(k *adminv1.APIKey) APIKey {
	return APIKey{ID: k.GetId(), Username: k.GetUsername(), Name: k.GetName(), Prefix: k.GetKeyPrefix(), Status: k.GetStatus(),
		ExpiresAt: ts(k.GetExpiresAt()), LastUsedAt: ts(k.GetLastUsedAt()), CreatedAt: ts(k.GetCreatedAt()),
		UsageCount: k.GetUsageCount(), IsService: k.GetIsService()}
}

func apiKeys(ks []*adminv1.APIKey) []APIKey {
	out := make([]APIKey, len(ks))
	for i, k := range ks {
		out[i] = apiKey(k)
	}
	return out
}

// MyKeys lists the caller's keys.
func (w *Web) MyKeys(ctx context.Context, c Caller) ([]APIKey, error) {
	ctx, cancel := w.as(ctx, c)
	defer cancel()
	r, err := w.account.ListMyAPIKeys(ctx, &accountv1.ListMyAPIKeysRequest{})
	if err != nil {
		return nil, webError(err)
	}
	return apiKeys(r.GetApiKeys()), nil
}

// CreateMyKey mints a key; full is its secret, shown this once.
func (w *Web) CreateMyKey(ctx context.Context, c Caller, name string) (k APIKey, full string, err error) {
	ctx, cancel := w.as(ctx, c)
	defer cancel()
	r, err := w.account.CreateMyAPIKey(ctx, &accountv1.CreateMyAPIKeyRequest{Name: name})
	if err != nil {
		return APIKey{}, "", webError(err)
	}
	return apiKey(r.GetApiKey()), r.GetFullKey(), nil
}

// RenewMyKey gives one of the caller's keys a new expiry.
func (w *Web) RenewMyKey(ctx context.Context, c Caller, id int64) error {
	ctx, cancel := w.as(ctx, c)
	defer cancel()
	_, err := w.account.RenewMyAPIKey(ctx, &accountv1.RenewMyAPIKeyRequest{Id: id})
	return webError(err)
}

// RevokeMyKey revokes one of the caller's keys.
func (w *Web) RevokeMyKey(ctx context.Context, c Caller, id int64) error {
	ctx, cancel := w.as(ctx, c)
	defer cancel()
	_, err := w.account.RevokeMyAPIKey(ctx, &accountv1.RevokeMyAPIKeyRequest{Id: id})
	return webError(err)
}

// QuotaRequest is a request for a larger budget.
type QuotaRequest struct {
	ID                    int64
	Username              string
	RequestedTokens       int64
	Justification, Status string
	ReviewNotes           string
	GrantedTokens         int64
	CreatedAt, ReviewedAt time.Time
}

func quotaRequests(qs []*adminv1.QuotaRequest) []QuotaRequest {
	out := make([]QuotaRequest, len(qs))
	for i, q := range qs {
		out[i] = QuotaRequest{ID: q.GetId(), Username: q.GetUsername(), RequestedTokens: q.GetRequestedTokens(),
			Justification: q.GetJustification(), Status: q.GetStatus(), ReviewNotes: q.GetReviewNotes(),
			GrantedTokens: q.GetGrantedTokens(), CreatedAt: ts(q.GetCreatedAt()), ReviewedAt: ts(q.GetReviewedAt())}
	}
	return out
}

// MyQuotaRequests lists the caller's quota requests, newest first.
func (w *Web) MyQuotaRequests(ctx context.Context, c Caller) ([]QuotaRequest, error) {
	ctx, cancel := w.as(ctx, c)
	defer cancel()
	r, err := w.account.ListMyQuotaRequests(ctx, &accountv1.ListMyQuotaRequestsRequest{})
	if err != nil {
		return nil, webError(err)
	}
	return quotaRequests(r.GetQuotaRequests()), nil
}

// RequestQuota files a quota-increase request.
func (w *Web) RequestQuota(ctx context.Context, c Caller, tokens int64, justification string) error {
	ctx, cancel := w.as(ctx, c)
	defer cancel()
	_, err := w.account.CreateQuotaRequest(ctx, &accountv1.CreateQuotaRequestRequest{RequestedTokens: tokens, Justification: justification})
	return webError(err)
}
