package cpclient

import (
	"context"
	"fmt"
	"strings"
	"time"

	adminv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/admin/v1"
)

// Backend is one inference endpoint as the admin console shows it.
type Backend struct {
	ID                                  int64
	Name, URL, Engine, Status, NodeName string
	MaxConcurrent, InFlight             int
	ConsecutiveFailures                 int
	LastError, Version                  string
	LastHealthCheck                     time.Time
	Simulated                           bool
	Models                              []string
}

// Backends lists every backend.
func (w *Web) Backends(ctx context.Context, c Caller) ([]Backend, error) {
	ctx, cancel := w.as(ctx, c)
	defer cancel()
	r, err := w.registry.ListBackends(ctx, &adminv1.ListBackendsRequest{})
	if err != nil {
		return nil, webError(err)
	}
	out := make([]Backend, len(r.GetBackends()))
	for i, b := range r.GetBackends() {
		out[i] = Backend{ID: b.GetId(), Name: b.GetName(), URL: b.GetUrl(), Engine: b.GetEngine(), Status: b.GetStatus(),
			NodeName: b.GetNodeName(), MaxConcurrent: int(b.GetMaxConcurrent()), InFlight: int(b.GetCurrentConcurrent()),
			ConsecutiveFailures: int(b.GetConsecutiveFailures()), LastError: b.GetLastError(), Version: b.GetVersion(),
			LastHealthCheck: ts(b.GetLastHealthCheck()), Simulated: b.GetSimulated(), Models: b.GetModels()}
	}
	return out, nil
}

// BackendAction names what an administrator does to a backend.
type BackendAction string

// The backend actions.
const (
	ActionEnable  BackendAction = "enable"
	ActionDisable BackendAction = "disable"
	ActionDrain   BackendAction = "drain"
	ActionRefresh BackendAction = "refresh"
	ActionRemove  BackendAction = "remove"
)

// ChangeBackend enables, disables, drains, refreshes or removes a backend.
func (w *Web) ChangeBackend(ctx context.Context, c Caller, id int64, a BackendAction) error {
	ctx, cancel := w.as(ctx, c)
	defer cancel()
	var err error
	switch a {
	case ActionEnable:
		_, err = w.registry.EnableBackend(ctx, &adminv1.EnableBackendRequest{Id: id})
	case ActionDisable:
		_, err = w.registry.DisableBackend(ctx, &adminv1.DisableBackendRequest{Id: id})
	case ActionDrain:
		_, err = w.registry.DrainBackend(ctx, &adminv1.DrainBackendRequest{Id: id})
	case ActionRefresh:
		_, err = w.registry.RefreshBackend(ctx, &adminv1.RefreshBackendRequest{Id: id})
	case ActionRemove:
		_, err = w.registry.RemoveBackend(ctx, &adminv1.RemoveBackendRequest{Id: id})
	default:
		return &WebError{Status: 400, Message: fmt.Sprintf("unknown action %q", a)}
	}
	return webError(err)
}

// RegisterBackend registers a backend by name, URL and engine (ollama or vllm).
func (w *Web) RegisterBackend(ctx context.Context, c Caller, name, url, engine string, maxConcurrent int) error {
	ctx, cancel := w.as(ctx, c)
	defer cancel()
	_, err := w.registry.RegisterBackend(ctx, &adminv1.RegisterBackendRequest{
		Name: name, Url: url, Engine: engine, MaxConcurrent: int32(maxConcurrent)})
	return webError(err)
}

// Node is one GPU node.
type Node struct {
	ID                                   int64
	Name, Hostname, Status, AgentVersion string
	GPUCount                             int
	LastSeen                             time.Time
}

// Nodes lists every node.
func (w *Web) Nodes(ctx context.Context, c Caller) ([]Node, error) {
	ctx, cancel := w.as(ctx, c)
	defer cancel()
	r, err := w.registry.ListNodes(ctx, &adminv1.ListNodesRequest{})
	if err != nil {
		return nil, webError(err)
	}
	out := make([]Node, len(r.GetNodes()))
	for i, n := range r.GetNodes() {
		out[i] = Node{ID: n.GetId(), Name: n.GetName(), Hostname: n.GetHostname(), Status: n.GetStatus(),
			AgentVersion: n.GetAgentVersion(), GPUCount: int(n.GetGpuCount()), LastSeen: ts(n.GetLastSeen())}
	}
	return out, nil
}

// Model is one model on one backend.
type Model struct {
	Name, Backend, Family string
	ContextLength         int64
	Capabilities          []string
	Loaded                bool
}

// Models lists every model on every backend.
func (w *Web) Models(ctx context.Context, c Caller) ([]Model, error) {
	ctx, cancel := w.as(ctx, c)
	defer cancel()
	r, err := w.registry.ListModels(ctx, &adminv1.ListModelsRequest{})
	if err != nil {
		return nil, webError(err)
	}
	out := make([]Model, len(r.GetModels()))
	for i, m := range r.GetModels() {
		out[i] = Model{Name: m.GetName(), Backend: m.GetBackendName(), Family: m.GetFamily(),
			ContextLength: m.GetContextLength(), Capabilities: m.GetCapabilities(), Loaded: m.GetLoaded()}
	}
	return out, nil
}

// GPU is the latest sample of one GPU.
type GPU struct {
	Node, Name                       string
	Index, UtilPercent, TemperatureC int
	MemoryUsedBytes, MemoryTotal     uint64
	PowerWatts                       float64
	SampledAt                        time.Time
}

// GPUs lists the latest GPU samples.
func (w *Web) GPUs(ctx context.Context, c Caller) ([]GPU, error) {
	ctx, cancel := w.as(ctx, c)
	defer cancel()
	r, err := w.registry.ListGPUs(ctx, &adminv1.ListGPUsRequest{})
	if err != nil {
		return nil, webError(err)
	}
	out := make([]GPU, len(r.GetGpus()))
	for i, g := range r.GetGpus() {
		s := g.GetSample()
		out[i] = GPU{Node: g.GetNodeName(), Name: s.GetName(), Index: int(s.GetIndex()),
			UtilPercent: int(s.GetUtilizationGpuPercent()), TemperatureC: int(s.GetTemperatureC()),
			MemoryUsedBytes: s.GetMemoryUsedBytes(), MemoryTotal: s.GetMemoryTotalBytes(),
			PowerWatts: float64(s.GetPowerDrawMilliwatts()) / 1000, SampledAt: ts(g.GetSampledAt())}
	}
	return out, nil
}

// User is one account as the console lists it. The overrides are nil where
// the group's value applies.
type User struct {
	ID                        int64
	Username, Email, FullName string
	Group                     string
	GroupID                   int64
	Active                    bool
	CreatedAt                 time.Time
	RPMLimit, WeightOverride  *int
	TokenBudget               *int64
	College, Department       string
	IntendedUse               string
}

func user(u *adminv1.User) User {
	out := User{ID: u.GetId(), Username: u.GetUsername(), Email: u.GetEmail(), FullName: u.GetFullName(),
		Group: u.GetGroupName(), GroupID: u.GetGroupId(), Active: u.GetIsActive(), CreatedAt: ts(u.GetCreatedAt()),
		College: u.GetCollege(), Department: u.GetDepartment(), IntendedUse: u.GetIntendedUse()}
	if u.RpmLimit != nil {
		n := int(u.GetRpmLimit())
		out.RPMLimit = &n
	}
	if u.WeightOverride != nil {
		n := int(u.GetWeightOverride())
		out.WeightOverride = &n
	}
	if u.TokenBudget != nil {
		n := u.GetTokenBudget()
		out.TokenBudget = &n
	}
	return out
}

// UserQuery selects a page of users: Search matches username, e-mail or
// name; GroupID 0 means every group.
type UserQuery struct {
	Search      string
	GroupID     int64
	Skip, Limit int
}

// UserList is one page of users and how many match in all.
type UserList struct {
	Users []User
	Total int64
}

// Users lists the users q selects.
func (w *Web) Users(ctx context.Context, c Caller, q UserQuery) (UserList, error) {
	ctx, cancel := w.as(ctx, c)
	defer cancel()
	r, err := w.identity.ListUsers(ctx, &adminv1.ListUsersRequest{Search: q.Search, GroupId: q.GroupID,
		Skip: int32(q.Skip), Limit: int32(q.Limit)})
	if err != nil {
		return UserList{}, webError(err)
	}
	out := UserList{Users: make([]User, len(r.GetUsers())), Total: r.GetTotal()}
	for i, u := range r.GetUsers() {
		out.Users[i] = user(u)
	}
	return out, nil
}

// Group is one group with its limits and privileges.
type Group struct {
	ID                           int64
	Name, DisplayName            string
	Description                  string
	TokenBudget                  int64
	RPMLimit, Weight, UserCount  int
	KeyExpiryDays, MaxKeys       int
	IsAdmin, IsAuditor           bool
	AuditPrompts, AuditResponses bool
}

// Groups lists the groups.
func (w *Web) Groups(ctx context.Context, c Caller) ([]Group, error) {
	ctx, cancel := w.as(ctx, c)
	defer cancel()
	r, err := w.identity.ListGroups(ctx, &adminv1.ListGroupsRequest{})
	if err != nil {
		return nil, webError(err)
	}
	out := make([]Group, len(r.GetGroups()))
	for i, g := range r.GetGroups() {
		out[i] = Group{ID: g.GetId(), Name: g.GetName(), DisplayName: g.GetDisplayName(), Description: g.GetDescription(),
			TokenBudget: g.GetTokenBudget(), RPMLimit: int(g.GetRpmLimit()), Weight: int(g.GetSchedulerWeight()),
			UserCount: int(g.GetUserCount()), KeyExpiryDays: int(g.GetApiKeyExpiryDays()), MaxKeys: int(g.GetMaxApiKeys()),
			IsAdmin: g.GetIsAdmin(), IsAuditor: g.GetIsAuditor(), AuditPrompts: g.GetAuditPrompts(), AuditResponses: g.GetAuditResponses()}
	}
	return out, nil
}

// AllKeys lists every key (status: active, revoked, expired or empty for all).
func (w *Web) AllKeys(ctx context.Context, c Caller, status string) ([]APIKey, error) {
	ctx, cancel := w.as(ctx, c)
	defer cancel()
	r, err := w.identity.ListAPIKeys(ctx, &adminv1.ListAPIKeysRequest{Status: status})
	if err != nil {
		return nil, webError(err)
	}
	return apiKeys(r.GetApiKeys()), nil
}

// RevokeKey revokes any key.
func (w *Web) RevokeKey(ctx context.Context, c Caller, id int64) error {
	ctx, cancel := w.as(ctx, c)
	defer cancel()
	_, err := w.identity.RevokeAPIKey(ctx, &adminv1.RevokeAPIKeyRequest{Id: id})
	return webError(err)
}

// QuotaRequests lists quota requests by status (pending, approved, denied, all).
func (w *Web) QuotaRequests(ctx context.Context, c Caller, status string) ([]QuotaRequest, error) {
	ctx, cancel := w.as(ctx, c)
	defer cancel()
	r, err := w.identity.ListQuotaRequests(ctx, &adminv1.ListQuotaRequestsRequest{Status: status})
	if err != nil {
		return nil, webError(err)
	}
	return quotaRequests(r.GetQuotaRequests()), nil
}

// ReviewQuotaRequest approves or denies a request.
func (w *Web) ReviewQuotaRequest(ctx context.Context, c Caller, id int64, approve bool, notes string) error {
	ctx, cancel := w.as(ctx, c)
	defer cancel()
	_, err := w.identity.ReviewQuotaRequest(ctx, &adminv1.ReviewQuotaRequestRequest{Id: id, Approved: approve, Notes: notes})
	return webError(err)
}

// QueueModel is one model's queue.
type QueueModel struct {
	Model             string
	Waiting, InFlight int
	OldestWait        time.Duration
}

// QueueUser is one user's fair-share state.
type QueueUser struct {
	Username                  string
	Weight, Waiting, InFlight int
	RecentTokens, TokensUsed  int64
	TokenBudget               int64
}

// Queue is the live queue.
type Queue struct {
	TotalWaiting, TotalInFlight int64
	Models                      []QueueModel
	Users                       []QueueUser
}

// Queue returns the live queue.
func (w *Web) Queue(ctx context.Context, c Caller) (Queue, error) {
	ctx, cancel := w.as(ctx, c)
	defer cancel()
	r, err := w.sched.GetQueue(ctx, &adminv1.GetQueueRequest{})
	if err != nil {
		return Queue{}, webError(err)
	}
	q := Queue{TotalWaiting: r.GetTotalWaiting(), TotalInFlight: r.GetTotalInFlight()}
	for _, m := range r.GetModels() {
		q.Models = append(q.Models, QueueModel{Model: m.GetModel(), Waiting: int(m.GetWaiting()), InFlight: int(m.GetInFlight()),
			OldestWait: m.GetOldestWait().AsDuration()})
	}
	for _, u := range r.GetUsers() {
		q.Users = append(q.Users, QueueUser{Username: u.GetUsername(), Weight: int(u.GetWeight()), Waiting: int(u.GetWaiting()),
			InFlight: int(u.GetInFlight()), RecentTokens: u.GetRecentTokens(), TokensUsed: u.GetTokensUsed(), TokenBudget: u.GetTokenBudget()})
	}
	return q, nil
}

// Decision is one recent scheduling decision.
type Decision struct {
	RequestID, Model, Username, Backend string
	DecidedAt                           time.Time
	Attempt, QueuePosition              int
	Waited                              time.Duration
	// Why lists each candidate backend with its score.
	Why string
}

// Decisions lists the most recent scheduling decisions, newest first.
func (w *Web) Decisions(ctx context.Context, c Caller, limit int) ([]Decision, error) {
	ctx, cancel := w.as(ctx, c)
	defer cancel()
	r, err := w.sched.ListDecisions(ctx, &adminv1.ListDecisionsRequest{Limit: int32(limit)})
	if err != nil {
		return nil, webError(err)
	}
	out := make([]Decision, len(r.GetDecisions()))
	for i, d := range r.GetDecisions() {
		var why []string
		for _, cs := range d.GetCandidates() {
			why = append(why, fmt.Sprintf("%s %.2f", cs.GetBackend(), cs.GetTotal()))
		}
		out[i] = Decision{RequestID: d.GetRequestId(), Model: d.GetModel(), Username: d.GetUsername(), Backend: d.GetChosenBackend(),
			DecidedAt: ts(d.GetDecidedAt()), Attempt: int(d.GetAttempt()), QueuePosition: int(d.GetQueuePosition()),
			Waited: d.GetWaited().AsDuration(), Why: strings.Join(why, ", ")}
	}
	return out, nil
}

// CreateUser creates a local user in a group.
func (w *Web) CreateUser(ctx context.Context, c Caller, username, email, fullName, password string, groupID int64) error {
	ctx, cancel := w.as(ctx, c)
	defer cancel()
	_, err := w.identity.CreateUser(ctx, &adminv1.CreateUserRequest{Username: username, Email: email, FullName: fullName,
		Password: password, GroupId: groupID})
	return webError(err)
}

// SetUserActive activates or deactivates a user (a deactivated user's keys
// and sessions stop working).
func (w *Web) SetUserActive(ctx context.Context, c Caller, id int64, active bool) error {
	ctx, cancel := w.as(ctx, c)
	defer cancel()
	_, err := w.identity.UpdateUser(ctx, &adminv1.UpdateUserRequest{Id: id, IsActive: &active})
	return webError(err)
}
