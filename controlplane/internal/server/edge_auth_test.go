package server

import (
	"context"
	"encoding/base64"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/mindrouter/mindrouter/controlplane/internal/identity"
	"github.com/mindrouter/mindrouter/controlplane/internal/store"
	adminv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/admin/v1"
	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
	nodeagentv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/nodeagent/v1"
)

// verdict is what the edge decides for a caller on the admin API.
type verdict int

const (
	unauthenticated verdict = iota + 1 // every admin call refused with Unauthenticated / 401
	denied                             // every admin call refused with PermissionDenied / 403
	readOnly                           // reads allowed, writes PermissionDenied / 403
	allowed                            // everything allowed
)

// principalCase is one caller of the authorization matrix.
type principalCase struct {
	name   string
	key    string // "" sends no credential
	want   verdict
	reason string // ErrorInfo reason of a refusal; "" for none
}

// principals mints one key per kind of caller on a fresh fixture.
func principals(t *testing.T, f *edgeFixture) []principalCase {
	t.Helper()
	ctx := context.Background()
	adminKey := f.adminKey(t)
	admin, err := f.st.GetUserByUsername(ctx, identity.BootstrapUser)
	require.NoError(t, err)
	student := f.user(t, "student1", store.GroupStudent)
	auditor := f.user(t, "auditor1", store.GroupAuditor)
	faculty := f.user(t, "faculty1", store.GroupFaculty)

	revokedKey := f.key(t, student, identity.ScopeAdmin)
	revoked, err := f.st.ListAPIKeys(ctx, store.APIKeyFilter{UserID: student})
	require.NoError(t, err)
	require.Len(t, revoked, 1)
	_, err = f.ident.Revoke(ctx, revoked[0].ID)
	require.NoError(t, err)

	g, err := f.st.GetGroupByName(ctx, store.GroupAdmin)
	require.NoError(t, err)
	inactive, err := f.st.CreateUser(ctx, store.UserSpec{Username: "former", Email: "former@example.edu", GroupID: g.ID, Inactive: true})
	require.NoError(t, err)

	unknown, err := identity.NewKey()
	require.NoError(t, err)

	const (
		invalid    = "REASON_INVALID_CREDENTIAL"
		permission = "REASON_PERMISSION_DENIED"
	)
	return []principalCase{
		{"no key", "", unauthenticated, ""},
		{"malformed key", "sk-not-a-mindrouter-key", unauthenticated, invalid},
		{"unknown key", unknown, unauthenticated, invalid},
		{"revoked admin-scoped key", revokedKey, unauthenticated, "REASON_CREDENTIAL_REVOKED"},
		{"inactive admin", f.key(t, inactive.ID, identity.ScopeAdmin), unauthenticated, "REASON_USER_INACTIVE"},
		{"student, inference scope", f.key(t, student), denied, permission},
		{"student, admin scope", f.key(t, student, identity.ScopeInference, identity.ScopeAdmin), denied, permission},
		{"faculty, admin scope", f.key(t, faculty, identity.ScopeAdmin), denied, permission},
		{"auditor, inference scope", f.key(t, auditor), denied, permission},
		{"auditor, admin scope", f.key(t, auditor, identity.ScopeAdmin), readOnly, permission},
		{"admin, inference scope", f.key(t, admin.ID, identity.ScopeInference), denied, permission},
		{"admin", adminKey, allowed, ""},
	}
}

// adminCall is one admin API call made over gRPC. Calls allowed through answer
// okCode: the write calls carry invalid input so that they change nothing.
type adminCall struct {
	name   string
	write  bool
	okCode codes.Code
	call   func(ctx context.Context, reg adminv1.RegistryServiceClient, ident adminv1.IdentityServiceClient) error
}

var grpcAdminCalls = []adminCall{
	{"ListBackends", false, codes.OK, func(ctx context.Context, r adminv1.RegistryServiceClient, _ adminv1.IdentityServiceClient) error {
		_, err := r.ListBackends(ctx, &adminv1.ListBackendsRequest{})
		return err
	}},
	{"ListModels", false, codes.OK, func(ctx context.Context, r adminv1.RegistryServiceClient, _ adminv1.IdentityServiceClient) error {
		_, err := r.ListModels(ctx, &adminv1.ListModelsRequest{})
		return err
	}},
	{"GetBackend", false, codes.InvalidArgument, func(ctx context.Context, r adminv1.RegistryServiceClient, _ adminv1.IdentityServiceClient) error {
		_, err := r.GetBackend(ctx, &adminv1.GetBackendRequest{})
		return err
	}},
	{"ListGroups", false, codes.OK, func(ctx context.Context, _ adminv1.RegistryServiceClient, i adminv1.IdentityServiceClient) error {
		_, err := i.ListGroups(ctx, &adminv1.ListGroupsRequest{})
		return err
	}},
	{"ListAPIKeys", false, codes.OK, func(ctx context.Context, _ adminv1.RegistryServiceClient, i adminv1.IdentityServiceClient) error {
		_, err := i.ListAPIKeys(ctx, &adminv1.ListAPIKeysRequest{})
		return err
	}},
	{"RegisterBackend", true, codes.InvalidArgument, func(ctx context.Context, r adminv1.RegistryServiceClient, _ adminv1.IdentityServiceClient) error {
		_, err := r.RegisterBackend(ctx, &adminv1.RegisterBackendRequest{Name: "b1", Url: "http://127.0.0.1:9", Engine: "tgi"})
		return err
	}},
	{"DeleteNode", true, codes.InvalidArgument, func(ctx context.Context, r adminv1.RegistryServiceClient, _ adminv1.IdentityServiceClient) error {
		_, err := r.DeleteNode(ctx, &adminv1.DeleteNodeRequest{})
		return err
	}},
	{"CreateUser", true, codes.InvalidArgument, func(ctx context.Context, _ adminv1.RegistryServiceClient, i adminv1.IdentityServiceClient) error {
		_, err := i.CreateUser(ctx, &adminv1.CreateUserRequest{})
		return err
	}},
	{"RevokeAPIKey", true, codes.InvalidArgument, func(ctx context.Context, _ adminv1.RegistryServiceClient, i adminv1.IdentityServiceClient) error {
		_, err := i.RevokeAPIKey(ctx, &adminv1.RevokeAPIKeyRequest{})
		return err
	}},
	{"UpdateUser", true, codes.InvalidArgument, func(ctx context.Context, _ adminv1.RegistryServiceClient, i adminv1.IdentityServiceClient) error {
		_, err := i.UpdateUser(ctx, &adminv1.UpdateUserRequest{})
		return err
	}},
	{"UpdateGroup", true, codes.InvalidArgument, func(ctx context.Context, _ adminv1.RegistryServiceClient, i adminv1.IdentityServiceClient) error {
		_, err := i.UpdateGroup(ctx, &adminv1.UpdateGroupRequest{})
		return err
	}},
}

// restCall is one admin API call made over the REST gateway, mirroring the gRPC ones.
type restCall struct {
	method, path, body string
	write              bool
	okStatus           int
}

var restAdminCalls = []restCall{
	{"GET", "/api/admin/backends", "", false, http.StatusOK},
	{"GET", "/api/admin/models", "", false, http.StatusOK},
	{"GET", "/api/admin/groups", "", false, http.StatusOK},
	{"GET", "/api/admin/users", "", false, http.StatusOK},
	{"GET", "/api/admin/users/0", "", false, http.StatusBadRequest},
	{"POST", "/api/admin/backends/register", `{"name":"b1","url":"http://127.0.0.1:9","engine":"tgi"}`, true, http.StatusBadRequest},
	{"POST", "/api/admin/users", `{}`, true, http.StatusBadRequest},
	{"POST", "/api/admin/api-keys/0/revoke", "", true, http.StatusBadRequest},
	{"PATCH", "/api/admin/users/0", `{"rpm_limit":5}`, true, http.StatusBadRequest},
	{"PATCH", "/api/admin/groups/0", `{"scheduler_weight":5}`, true, http.StatusBadRequest},
	{"DELETE", "/api/admin/nodes/0", "", true, http.StatusBadRequest},
}

// expectCode is the gRPC code a principal gets for a call.
func expectCode(p principalCase, write bool, okCode codes.Code) codes.Code {
	switch {
	case p.want == unauthenticated:
		return codes.Unauthenticated
	case p.want == denied, p.want == readOnly && write:
		return codes.PermissionDenied
	}
	return okCode
}

func reasonOf(st *status.Status) string {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason()
		}
	}
	return ""
}

// TestAuthorizationMatrix checks every kind of caller against admin reads and writes,
// over gRPC and over the REST gateway, which must agree.
func TestAuthorizationMatrix(t *testing.T) {
	t.Parallel()
	f := newEdgeFixture(t, 5*time.Second)
	reg := adminv1.NewRegistryServiceClient(f.conn)
	ident := adminv1.NewIdentityServiceClient(f.conn)
	for _, p := range principals(t, f) {
		t.Run(p.name, func(t *testing.T) {
			for _, c := range grpcAdminCalls {
				err := c.call(withKey(p.key), reg, ident)
				st := status.Convert(err)
				want := expectCode(p, c.write, c.okCode)
				require.Equal(t, want, st.Code(), "gRPC %s: %v", c.name, err)
				if want == codes.Unauthenticated || want == codes.PermissionDenied {
					assert.Equal(t, p.reason, reasonOf(st), "gRPC %s: ErrorInfo reason", c.name)
					assert.NotContains(t, st.Message(), "mr2_", "gRPC %s: no key material in refusals", c.name)
				}
			}
			for _, c := range restAdminCalls {
				code, body := f.rest(t, c.method, c.path, c.body, bearerHeader(p.key))
				want := restStatus(expectCode(p, c.write, codes.OK), c.okStatus)
				require.Equal(t, want, code, "REST %s %s: %s", c.method, c.path, body)
				if p.reason != "" && (code == http.StatusUnauthorized || code == http.StatusForbidden) {
					assert.Contains(t, string(body), `"reason":"`+p.reason+`"`, "REST %s %s: the error carries the ErrorInfo", c.method, c.path)
				}
			}
		})
	}
}

// restStatus maps the expected gRPC outcome to the HTTP status the gateway answers.
func restStatus(c codes.Code, okStatus int) int {
	switch c {
	case codes.Unauthenticated:
		return http.StatusUnauthorized
	case codes.PermissionDenied:
		return http.StatusForbidden
	}
	return okStatus
}

func TestRESTCredentialHeaders(t *testing.T) {
	t.Parallel()
	f := newEdgeFixture(t, 5*time.Second)
	admin := f.adminKey(t)
	student := f.key(t, f.user(t, "student1", store.GroupStudent))
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:"+admin))
	cases := []struct {
		name   string
		header http.Header
		want   int
	}{
		{"bearer", http.Header{"Authorization": {"Bearer " + admin}}, http.StatusOK},
		{"bearer, any case", http.Header{"Authorization": {"bearer " + admin}}, http.StatusOK},
		{"X-API-Key", http.Header{"X-Api-Key": {admin}}, http.StatusOK},
		{"x-api-key, lower case", http.Header{"x-api-key": {admin}}, http.StatusOK},
		{"X-API-Key of a student", http.Header{"X-Api-Key": {student}}, http.StatusForbidden},
		{"basic auth is refused", http.Header{"Authorization": {basic}}, http.StatusUnauthorized},
		{"bare key without scheme", http.Header{"Authorization": {admin}}, http.StatusUnauthorized},
		{"empty bearer", http.Header{"Authorization": {"Bearer "}}, http.StatusUnauthorized},
		{"key in a cookie is ignored", http.Header{"Cookie": {"api_key=" + admin}}, http.StatusUnauthorized},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body := f.rest(t, "GET", "/api/admin/groups", "", tc.header)
			require.Equal(t, tc.want, code, string(body))
			require.NotContains(t, string(body), admin, "the key is never echoed")
		})
	}
}

func TestGRPCAcceptsXAPIKeyMetadata(t *testing.T) {
	t.Parallel()
	f := newEdgeFixture(t, 5*time.Second)
	admin := f.adminKey(t)
	ctx := metadata.AppendToOutgoingContext(context.Background(), "x-api-key", admin)
	_, err := adminv1.NewIdentityServiceClient(f.conn).ListGroups(ctx, &adminv1.ListGroupsRequest{})
	require.NoError(t, err)
}

func TestClusterTokenGuardsAdmissionAndSession(t *testing.T) {
	t.Parallel()
	f := newEdgeFixture(t, 5*time.Second)
	admin := f.adminKey(t)
	admission := controlplanev1.NewAdmissionServiceClient(f.conn)
	sessions := controlplanev1.NewSessionServiceClient(f.conn)

	openSession := func(ctx context.Context) (*controlplanev1.SessionResponse, error) {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		stream, err := sessions.Session(ctx)
		if err != nil {
			return nil, err
		}
		if err := stream.Send(&controlplanev1.SessionRequest{Kind: &controlplanev1.SessionRequest_Hello{
			Hello: &controlplanev1.Hello{ReplicaId: "replica-1"},
		}}); err != nil {
			_, err = stream.Recv() // the refusal is delivered on Recv
			return nil, err
		}
		return stream.Recv()
	}

	refused := map[string]context.Context{
		"no token":          context.Background(),
		"wrong token":       withClusterToken(context.Background(), "wrong"),
		"token prefix":      withClusterToken(context.Background(), edgeClusterToken[:len(edgeClusterToken)-1]),
		"token with suffix": withClusterToken(context.Background(), edgeClusterToken+"x"),
		"empty token":       withClusterToken(context.Background(), ""),
		"admin API key":     withKey(admin),
		"token as bearer":   metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+edgeClusterToken),
	}
	for name, ctx := range refused {
		t.Run(name, func(t *testing.T) {
			_, err := admission.Admit(ctx, &controlplanev1.AdmitRequest{RequestId: "r1"})
			require.Equal(t, codes.Unauthenticated, status.Code(err), "Admit: %v", err)
			_, err = admission.ListModels(ctx, &controlplanev1.ListModelsRequest{})
			require.Equal(t, codes.Unauthenticated, status.Code(err), "ListModels: %v", err)
			_, err = openSession(ctx)
			require.Equal(t, codes.Unauthenticated, status.Code(err), "Session: %v", err)
		})
	}
	require.Zero(t, f.adm.admits.Load(), "no refused call reached admission")
	require.Zero(t, f.adm.listModels.Load())
	require.Zero(t, f.sess.sessions(), "no refused stream reached the session service")

	ctx := withClusterToken(context.Background(), edgeClusterToken)
	resp, err := admission.Admit(ctx, &controlplanev1.AdmitRequest{RequestId: "r2"})
	require.NoError(t, err)
	require.Equal(t, "lease-r2", resp.GetLease().GetLeaseId())
	require.EqualValues(t, 1, f.adm.admits.Load())

	welcome, err := openSession(ctx)
	require.NoError(t, err)
	require.Equal(t, "session-replica-1", welcome.GetWelcome().GetSessionId())
	require.Equal(t, 1, f.sess.sessions())

	// The cluster token opens nothing on the admin API.
	_, err = adminv1.NewRegistryServiceClient(f.conn).ListBackends(ctx, &adminv1.ListBackendsRequest{})
	require.Equal(t, codes.Unauthenticated, status.Code(err))
}

func TestNodeServicesAreLeftToTheirService(t *testing.T) {
	t.Parallel()
	f := newEdgeFixture(t, 5*time.Second)
	// The edge lets node-agent calls through without credentials; the telemetry
	// service authenticates them itself (here it is unimplemented, which proves the
	// call got past the interceptor).
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := nodeagentv1.NewTelemetryServiceClient(f.conn).Stream(ctx)
	require.NoError(t, err)
	_, err = stream.Recv()
	require.Equal(t, codes.Unimplemented, status.Code(err), "%v", err)
}

func TestAccessForTable(t *testing.T) {
	t.Parallel()
	cases := []struct {
		method string
		want   access
		known  bool
	}{
		{"/grpc.health.v1.Health/Check", accessPublic, true},
		{"/grpc.health.v1.Health/Watch", accessPublic, true},
		{"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", accessPublic, true},
		{"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", accessPublic, true},
		{"/mindrouter.controlplane.v1.AdmissionService/Admit", accessCluster, true},
		{"/mindrouter.controlplane.v1.AdmissionService/Release", accessCluster, true},
		{"/mindrouter.controlplane.v1.AdmissionService/ListModels", accessCluster, true},
		{"/mindrouter.controlplane.v1.SessionService/Session", accessCluster, true},
		{"/mindrouter.nodeagent.v1.TelemetryService/Stream", accessNode, true},
		{"/mindrouter.admin.v1.RegistryService/ListBackends", accessRead, true},
		{"/mindrouter.admin.v1.RegistryService/GetBackend", accessRead, true},
		{"/mindrouter.admin.v1.RegistryService/ListGPUs", accessRead, true},
		{"/mindrouter.admin.v1.IdentityService/ListUsers", accessRead, true},
		{"/mindrouter.admin.v1.IdentityService/GetUser", accessRead, true},
		{"/mindrouter.admin.v1.RegistryService/RegisterBackend", accessWrite, true},
		{"/mindrouter.admin.v1.RegistryService/RemoveBackend", accessWrite, true},
		{"/mindrouter.admin.v1.RegistryService/DrainBackend", accessWrite, true},
		{"/mindrouter.admin.v1.IdentityService/CreateUser", accessWrite, true},
		{"/mindrouter.admin.v1.IdentityService/RevokeAPIKey", accessWrite, true},
		{"/mindrouter.admin.v1.IdentityService/UpdateUser", accessWrite, true},
		{"/mindrouter.admin.v1.IdentityService/UpdateGroup", accessWrite, true},
		// A read-sounding word elsewhere in the name does not make a write a read.
		{"/mindrouter.admin.v1.ListService/DeleteEverything", accessWrite, true},
		// Unknown services and look-alike packages are refused.
		{"/mindrouter.admin.v2.RegistryService/ListBackends", 0, false},
		{"/mindrouter.controlplane.v2.AdmissionService/Admit", 0, false},
		{"/grpc.healthz.v1.Health/Check", 0, false},
		{"/grpc.channelz.v1.Channelz/GetTopChannels", 0, false},
		{"/some.other.v1.Service/Do", 0, false},
		{"mindrouter.admin.v1.RegistryService/ListBackends", 0, false},
		{"", 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.method, func(t *testing.T) {
			got, ok := accessFor(tc.method)
			require.Equal(t, tc.known, ok)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestAuthorizeRefusesUnexposedMethods(t *testing.T) {
	t.Parallel()
	a := newAuthenticator(nil, nil, edgeClusterToken)
	// Even with a valid cluster token and a key, an unknown method is refused before
	// any credential is looked at (the nil verifier would panic otherwise).
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs(
		ClusterTokenHeader, edgeClusterToken, "authorization", "Bearer mr2_x"))
	_, err := a.authorize(ctx, "/some.other.v1.Service/Do")
	require.Equal(t, codes.PermissionDenied, status.Code(err))
	_, err = a.authorize(ctx, "/mindrouter.controlplane.v1.AdmissionService/Admit")
	require.NoError(t, err)
}
