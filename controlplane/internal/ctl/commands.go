package ctl

import (
	"google.golang.org/protobuf/proto"

	adminv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/admin/v1"
	auditv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/audit/v1"
)

// op is one command: a gRPC call and how to show its answer.
type op struct {
	verb, short string
	method      string
	req, resp   func() proto.Message
	// arg names the request field the one positional argument sets ("" for none).
	arg string
	// list is the repeated field printed as table rows; one is the message
	// field printed as a single row; neither prints the whole answer.
	list, one string
	cols      []string
	// fixed sets request fields the verb itself decides (system offline sets
	// online=false); they get no flag.
	fixed map[string]string
	// rawStream marks a server-streaming method of google.api.HttpBody
	// messages, whose bytes are written to stdout as they come.
	rawStream bool
	// body names a message field of the request whose fields the flags and
	// the argument set ("" for the request's own fields).
	body string
	// follow watches the model job of the answer's "job" field until it
	// ends, unless --detach; watch makes the op itself a job watch.
	follow, watch bool
}

// resource groups the commands of one noun.
type resource struct {
	name, short string
	aliases     []string
	ops         []op
	subs        []resource
}

const (
	identity  = "/mindrouter.admin.v1.IdentityService/"
	registry  = "/mindrouter.admin.v1.RegistryService/"
	scheduler = "/mindrouter.admin.v1.SchedulerService/"
	auditSvc  = "/mindrouter.audit.v1.AuditService/"
	teleSvc   = "/mindrouter.admin.v1.TelemetryHistoryService/"
	catalog   = "/mindrouter.admin.v1.CatalogService/"
	systemSvc = "/mindrouter.admin.v1.SystemService/"
)

func msg[T any, P interface {
	*T
	proto.Message
}]() func() proto.Message {
	return func() proto.Message { return P(new(T)) }
}

var (
	backendCols  = []string{"id", "name", "engine", "status", "url", "current_concurrent", "max_concurrent"}
	nodeCols     = []string{"id", "name", "hostname", "status", "gpu_count", "agent_secret_set"}
	userCols     = []string{"id", "username", "email", "group_name", "is_active", "token_budget"}
	groupCols    = []string{"id", "name", "is_admin", "is_auditor", "token_budget", "rpm_limit", "scheduler_weight", "max_api_keys", "user_count"}
	keyCols      = []string{"id", "username", "name", "key_prefix", "status", "expires_at", "is_service"}
	quotaCols    = []string{"id", "username", "requested_tokens", "status", "granted_tokens", "justification"}
	skrCols      = []string{"id", "kind", "username", "service_name", "status", "data_risk_level", "compliance_tags", "api_key_id", "justification"}
	auditCols    = []string{"request_id", "created_at", "username", "surface", "model", "status", "status_code", "prompt_tokens", "completion_tokens", "total_ms"}
	aliasCols    = []string{"name", "targets", "description"}
	overrideCols = []string{"model", "vision", "tools", "thinking", "embeddings", "structured_output", "context_length", "display_name"}
	systemCols   = []string{"online", "message", "changed_at", "changed_by"}
	actionCols   = []string{"id", "created_at", "actor", "action", "entity_type", "entity_id", "client_ip"}
)

var resources = []resource{
	{name: "backends", short: "Inference backends", aliases: []string{"backend"}, ops: []op{
		{verb: "list", short: "List backends", method: registry + "ListBackends", req: msg[adminv1.ListBackendsRequest](), resp: msg[adminv1.ListBackendsResponse](), list: "backends", cols: backendCols},
		{verb: "get", short: "Show a backend", method: registry + "GetBackend", arg: "id", req: msg[adminv1.GetBackendRequest](), resp: msg[adminv1.GetBackendResponse](), one: "backend", cols: backendCols},
		{verb: "register", short: "Register a backend", method: registry + "RegisterBackend", req: msg[adminv1.RegisterBackendRequest](), resp: msg[adminv1.RegisterBackendResponse](), one: "backend", cols: backendCols},
		{verb: "enable", short: "Put a backend back into service", method: registry + "EnableBackend", arg: "id", req: msg[adminv1.EnableBackendRequest](), resp: msg[adminv1.EnableBackendResponse](), one: "backend", cols: backendCols},
		{verb: "disable", short: "Take a backend out of service", method: registry + "DisableBackend", arg: "id", req: msg[adminv1.DisableBackendRequest](), resp: msg[adminv1.DisableBackendResponse](), one: "backend", cols: backendCols},
		{verb: "drain", short: "Let a backend finish its requests and take no more", method: registry + "DrainBackend", arg: "id", req: msg[adminv1.DrainBackendRequest](), resp: msg[adminv1.DrainBackendResponse](), one: "backend", cols: backendCols},
		{verb: "refresh", short: "Re-run health and model discovery", method: registry + "RefreshBackend", arg: "id", req: msg[adminv1.RefreshBackendRequest](), resp: msg[adminv1.RefreshBackendResponse](), one: "backend", cols: backendCols},
		{verb: "remove", short: "Remove a backend without requests in flight", method: registry + "RemoveBackend", arg: "id", req: msg[adminv1.RemoveBackendRequest](), resp: msg[adminv1.RemoveBackendResponse]()},
	}},
	{name: "nodes", short: "GPU nodes", aliases: []string{"node"}, ops: []op{
		{verb: "list", short: "List nodes", method: registry + "ListNodes", req: msg[adminv1.ListNodesRequest](), resp: msg[adminv1.ListNodesResponse](), list: "nodes", cols: nodeCols},
		{verb: "get", short: "Show a node", method: registry + "GetNode", arg: "id", req: msg[adminv1.GetNodeRequest](), resp: msg[adminv1.GetNodeResponse](), one: "node", cols: nodeCols},
		{verb: "register", short: "Register a node", method: registry + "RegisterNode", req: msg[adminv1.RegisterNodeRequest](), resp: msg[adminv1.RegisterNodeResponse](), one: "node", cols: nodeCols},
		{verb: "delete", short: "Delete a node no backend references", method: registry + "DeleteNode", arg: "id", req: msg[adminv1.DeleteNodeRequest](), resp: msg[adminv1.DeleteNodeResponse]()},
	}},
	{name: "models", short: "Models on the backends, and pulling and deleting them on Ollama backends", aliases: []string{"model"}, ops: append([]op{
		{verb: "list", short: "List every model on every backend", method: registry + "ListModels", req: msg[adminv1.ListModelsRequest](), resp: msg[adminv1.ListModelsResponse](), list: "models",
			cols: []string{"name", "backend_name", "context_length", "loaded", "capabilities"}},
	}, modelJobOps...), subs: []resource{
		{name: "alias", short: "Model aliases: a public name for one or more real models", aliases: []string{"aliases"}, ops: []op{
			{verb: "list", short: "List aliases", method: catalog + "ListModelAliases", req: msg[adminv1.ListModelAliasesRequest](), resp: msg[adminv1.ListModelAliasesResponse](), list: "aliases", cols: aliasCols},
			{verb: "set", short: "Create or replace an alias (--targets a,b; --description)", method: catalog + "SetModelAlias", arg: "name", body: "alias", req: msg[adminv1.SetModelAliasRequest](), resp: msg[adminv1.SetModelAliasResponse](), one: "alias", cols: aliasCols},
			{verb: "delete", short: "Delete an alias", method: catalog + "DeleteModelAlias", arg: "name", req: msg[adminv1.DeleteModelAliasRequest](), resp: msg[adminv1.DeleteModelAliasResponse]()},
		}},
		{name: "override", short: "Per-model overrides of capabilities, context length and display metadata", aliases: []string{"overrides"}, ops: []op{
			{verb: "list", short: "List overrides", method: catalog + "ListModelOverrides", req: msg[adminv1.ListModelOverridesRequest](), resp: msg[adminv1.ListModelOverridesResponse](), list: "overrides", cols: overrideCols},
			{verb: "set", short: "Create or replace a model's override (--vision, --tools, --thinking, --embeddings, --structured-output as true/false; unset flags keep the discovered value; --context-length, --display-name, --description)", method: catalog + "SetModelOverride", arg: "model", body: "override", req: msg[adminv1.SetModelOverrideRequest](), resp: msg[adminv1.SetModelOverrideResponse](), one: "override", cols: overrideCols},
			{verb: "delete", short: "Delete a model's override (the discovered values apply again)", method: catalog + "DeleteModelOverride", arg: "model", req: msg[adminv1.DeleteModelOverrideRequest](), resp: msg[adminv1.DeleteModelOverrideResponse]()},
		}},
	}},
	{name: "users", short: "Users", aliases: []string{"user"}, ops: []op{
		{verb: "list", short: "List users (--search, --group-id, --skip, --limit)", method: identity + "ListUsers", req: msg[adminv1.ListUsersRequest](), resp: msg[adminv1.ListUsersResponse](), list: "users", cols: userCols},
		{verb: "get", short: "Show a user", method: identity + "GetUser", arg: "id", req: msg[adminv1.GetUserRequest](), resp: msg[adminv1.GetUserResponse](), one: "user", cols: userCols},
		{verb: "create", short: "Create a local user", method: identity + "CreateUser", req: msg[adminv1.CreateUserRequest](), resp: msg[adminv1.CreateUserResponse](), one: "user", cols: userCols},
		{verb: "update", short: "Change a user (--is-active=false deactivates)", method: identity + "UpdateUser", arg: "id", req: msg[adminv1.UpdateUserRequest](), resp: msg[adminv1.UpdateUserResponse](), one: "user", cols: userCols},
		{verb: "delete", short: "Delete a user, their keys and sessions", method: identity + "DeleteUser", arg: "id", req: msg[adminv1.DeleteUserRequest](), resp: msg[adminv1.DeleteUserResponse]()},
		{verb: "reset-password", short: "Set a local account's password", method: identity + "ResetPassword", arg: "id", req: msg[adminv1.ResetPasswordRequest](), resp: msg[adminv1.ResetPasswordResponse]()},
	}},
	{name: "groups", short: "Groups", aliases: []string{"group"}, ops: []op{
		{verb: "list", short: "List groups", method: identity + "ListGroups", req: msg[adminv1.ListGroupsRequest](), resp: msg[adminv1.ListGroupsResponse](), list: "groups", cols: groupCols},
		{verb: "create", short: "Create a group", method: identity + "CreateGroup", req: msg[adminv1.CreateGroupRequest](), resp: msg[adminv1.CreateGroupResponse](), one: "group", cols: groupCols},
		{verb: "update", short: "Change a group", method: identity + "UpdateGroup", arg: "id", req: msg[adminv1.UpdateGroupRequest](), resp: msg[adminv1.UpdateGroupResponse](), one: "group", cols: groupCols},
		{verb: "delete", short: "Delete a group without members", method: identity + "DeleteGroup", arg: "id", req: msg[adminv1.DeleteGroupRequest](), resp: msg[adminv1.DeleteGroupResponse]()},
	}},
	{name: "keys", short: "API keys", aliases: []string{"key", "api-keys"}, ops: []op{
		{verb: "list", short: "List keys (--user-id, --status, --search)", method: identity + "ListAPIKeys", req: msg[adminv1.ListAPIKeysRequest](), resp: msg[adminv1.ListAPIKeysResponse](), list: "api_keys", cols: keyCols},
		{verb: "create", short: "Mint a key for a user (the full key is shown once)", method: identity + "CreateAPIKey", arg: "user_id", req: msg[adminv1.CreateAPIKeyRequest](), resp: msg[adminv1.CreateAPIKeyResponse]()},
		{verb: "revoke", short: "Revoke a key", method: identity + "RevokeAPIKey", arg: "id", req: msg[adminv1.RevokeAPIKeyRequest](), resp: msg[adminv1.RevokeAPIKeyResponse](), one: "api_key", cols: keyCols},
		{verb: "renew", short: "Give a key a new expiry", method: identity + "RenewAPIKey", arg: "id", req: msg[adminv1.RenewAPIKeyRequest](), resp: msg[adminv1.RenewAPIKeyResponse](), one: "api_key", cols: keyCols},
		{verb: "delete", short: "Revoke a key everywhere and delete it", method: identity + "DeleteAPIKey", arg: "id", req: msg[adminv1.DeleteAPIKeyRequest](), resp: msg[adminv1.DeleteAPIKeyResponse]()},
	}},
	{name: "quota-requests", short: "Quota-increase requests", aliases: []string{"quota-request", "qr"}, ops: []op{
		{verb: "list", short: "List requests (pending unless --status)", method: identity + "ListQuotaRequests", req: msg[adminv1.ListQuotaRequestsRequest](), resp: msg[adminv1.ListQuotaRequestsResponse](), list: "quota_requests", cols: quotaCols},
		{verb: "review", short: "Approve (--approved) or deny a request", method: identity + "ReviewQuotaRequest", arg: "id", req: msg[adminv1.ReviewQuotaRequestRequest](), resp: msg[adminv1.ReviewQuotaRequestResponse](), one: "quota_request", cols: quotaCols},
	}},
	{name: "service-key-requests", short: "Service-key requests", aliases: []string{"service-key-request", "skr"}, ops: []op{
		{verb: "list", short: "List requests (pending unless --status; --kind issue|revocation)", method: identity + "ListServiceKeyRequests", req: msg[adminv1.ListServiceKeyRequestsRequest](), resp: msg[adminv1.ListServiceKeyRequestsResponse](), list: "service_key_requests", cols: skrCols},
		{verb: "review", short: "Approve (--approved) or deny a request; an issued key is collected by the requester, a revoked one stops at once", method: identity + "ReviewServiceKeyRequest", arg: "id", req: msg[adminv1.ReviewServiceKeyRequestRequest](), resp: msg[adminv1.ReviewServiceKeyRequestResponse](), one: "service_key_request", cols: skrCols},
	}},
	{name: "audit", short: "The audit trail (reads of content are themselves recorded)", ops: []op{
		{verb: "search", short: "Search requests, newest first (--user-id, --model, --surface, --status, --start, --end, --text, --cursor, --limit)", method: auditSvc + "ListAuditRecords", req: msg[auditv1.ListAuditRecordsRequest](), resp: msg[auditv1.ListAuditRecordsResponse](), list: "records", cols: auditCols},
		{verb: "show", short: "Show one request in full, content included", method: auditSvc + "GetAuditRecord", arg: "request_id", req: msg[auditv1.GetAuditRecordRequest](), resp: msg[auditv1.GetAuditRecordResponse]()},
		{verb: "export", short: "Export matching requests as CSV or JSON Lines (--format, --include-content) to stdout", method: auditSvc + "ExportAuditRecords", req: msg[auditv1.ExportAuditRecordsRequest](), rawStream: true},
		{verb: "actions", short: "Search the admin-action log, newest first (--action, --actor-user-id, --entity-type, --start, --end)", method: auditSvc + "ListAdminActions", req: msg[auditv1.ListAdminActionsRequest](), resp: msg[auditv1.ListAdminActionsResponse](), list: "actions", cols: actionCols},
		{verb: "purge", short: "Apply the retention settings now", method: auditSvc + "PurgeAuditRecords", req: msg[auditv1.PurgeAuditRecordsRequest](), resp: msg[auditv1.PurgeAuditRecordsResponse]()},
	}},
	{name: "telemetry", short: "Telemetry history, energy and its cost (docs/energy.md)", aliases: []string{"tele"}, ops: []op{
		{verb: "history", short: "A metric's series (--metric, --scope gpu|node|backend|cluster, --node-id, --gpu-index, --backend-id, --range or --start/--end, --resolution)", method: teleSvc + "GetHistory", req: msg[adminv1.GetHistoryRequest](), resp: msg[adminv1.GetHistoryResponse](), list: "points", cols: []string{"at", "value", "min", "max", "samples"}},
		{verb: "export", short: "Export stored points as CSV or JSON Lines (--scope, --node-id, --backend-id, --metric, --resolution raw|1m|1h, --format) to stdout", method: teleSvc + "ExportHistory", req: msg[adminv1.ExportHistoryRequest](), rawStream: true},
		{verb: "energy", short: "Energy per GPU, node and cluster over a range, attributed and idle", method: teleSvc + "GetEnergy", req: msg[adminv1.GetEnergyRequest](), resp: msg[adminv1.GetEnergyResponse]()},
		{verb: "report", short: "kWh, cost and the commercial comparison per day and --group-by user|group|model", method: teleSvc + "GetEnergyReport", req: msg[adminv1.GetEnergyReportRequest](), resp: msg[adminv1.GetEnergyReportResponse](), list: "rows", cols: []string{"day", "key", "requests", "prompt_tokens", "completion_tokens", "kwh", "cost", "joules_per_token", "commercial_cost", "pending"}},
	}},
	alertsResource,
	{name: "system", short: "The whole service's on/off switch (offline: every inference request is refused with 503 and the message)", ops: []op{
		{verb: "status", short: "Say whether the service is online", method: systemSvc + "GetSystemStatus", req: msg[adminv1.GetSystemStatusRequest](), resp: msg[adminv1.GetSystemStatusResponse](), one: "status", cols: systemCols},
		{verb: "offline", short: "Take the service offline for maintenance (--message is required and shown to clients)", method: systemSvc + "SetSystemStatus", fixed: map[string]string{"online": "false"}, req: msg[adminv1.SetSystemStatusRequest](), resp: msg[adminv1.SetSystemStatusResponse](), one: "status", cols: systemCols},
		{verb: "online", short: "Bring the service back online", method: systemSvc + "SetSystemStatus", fixed: map[string]string{"online": "true", "message": ""}, req: msg[adminv1.SetSystemStatusRequest](), resp: msg[adminv1.SetSystemStatusResponse](), one: "status", cols: systemCols},
	}},
}

// topLevel are commands without a noun.
var topLevel = []op{
	{verb: "queue", short: "Waiting and in-flight requests per model, user and backend", method: scheduler + "GetQueue", req: msg[adminv1.GetQueueRequest](), resp: msg[adminv1.GetQueueResponse]()},
	{verb: "decisions", short: "The most recent scheduling decisions", method: scheduler + "ListDecisions", req: msg[adminv1.ListDecisionsRequest](), resp: msg[adminv1.ListDecisionsResponse](), list: "decisions"},
}
