package identity

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
	adminv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/admin/v1"
)

// storeErrors stands in for the server's error table, which is not this
// package's: it turns this package's and the store's sentinels into their codes.
func storeErrors(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	resp, err := h(ctx, req)
	switch {
	case err == nil:
	case errors.Is(err, ErrInvalidArgument):
		err = status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, ErrKeyLimit), errors.Is(err, ErrSelfDelete):
		err = status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, store.ErrNotFound):
		err = status.Error(codes.NotFound, err.Error())
	case errors.Is(err, store.ErrConflict):
		err = status.Error(codes.AlreadyExists, err.Error())
	}
	return resp, err
}

func startAdmin(t *testing.T) (*fixture, adminv1.IdentityServiceClient) {
	t.Helper()
	f := newFixture(t)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer(grpc.UnaryInterceptor(storeErrors))
	adminv1.RegisterIdentityServiceServer(srv, NewAdminServer(f.svc, f.st, f.acct))
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return f, adminv1.NewIdentityServiceClient(conn)
}

func rpcCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func requireCode(t *testing.T, err error, want codes.Code, msgContains string) {
	t.Helper()
	st, ok := status.FromError(err)
	require.True(t, ok, "%v", err)
	require.Equal(t, want, st.Code(), st.Message())
	require.Contains(t, st.Message(), msgContains)
}

func TestAdminServerUsersAndGroups(t *testing.T) {
	t.Parallel()
	f, c := startAdmin(t)
	ctx := rpcCtx(t)
	groups, err := c.ListGroups(ctx, &adminv1.ListGroupsRequest{})
	require.NoError(t, err)
	require.Len(t, groups.GetGroups(), 5)
	var student *adminv1.Group
	for _, g := range groups.GetGroups() {
		if g.GetName() == store.GroupStudent {
			student = g
		}
	}
	require.NotNil(t, student)
	assert.Equal(t, int32(30), student.GetRpmLimit())

	created, err := c.CreateUser(ctx, &adminv1.CreateUserRequest{
		Username: "pat", Email: "pat@example.edu", Password: "long enough", GroupId: student.GetId(), FullName: "Pat",
	})
	require.NoError(t, err)
	u := created.GetUser()
	assert.Equal(t, "pat", u.GetUsername())
	assert.Equal(t, store.GroupStudent, u.GetGroupName())
	assert.True(t, u.GetIsActive())
	assert.NotNil(t, u.GetCreatedAt())
	stored, err := f.st.GetUser(ctx, u.GetId())
	require.NoError(t, err)
	assert.True(t, CheckPassword(stored.PasswordHash, "long enough"))

	tests := []struct {
		name string
		req  *adminv1.CreateUserRequest
		code codes.Code
		msg  string
	}{
		{"short password", &adminv1.CreateUserRequest{Username: "q", Email: "q@x.edu", Password: "short", GroupId: student.GetId()}, codes.InvalidArgument, "password must be at least 8"},
		{"no group", &adminv1.CreateUserRequest{Username: "q", Email: "q@x.edu", Password: "long enough"}, codes.InvalidArgument, "group_id is required"},
		{"bad email", &adminv1.CreateUserRequest{Username: "q", Email: "q", Password: "long enough", GroupId: student.GetId()}, codes.InvalidArgument, "email"},
		{"duplicate", &adminv1.CreateUserRequest{Username: "pat", Email: "p2@x.edu", Password: "long enough", GroupId: student.GetId()}, codes.AlreadyExists, "pat"},
		{"unknown group", &adminv1.CreateUserRequest{Username: "q", Email: "q@x.edu", Password: "long enough", GroupId: 999}, codes.NotFound, "group"},
	}
	for _, tc := range tests {
		_, err := c.CreateUser(ctx, tc.req)
		requireCode(t, err, tc.code, tc.msg)
	}

	got, err := c.GetUser(ctx, &adminv1.GetUserRequest{Id: u.GetId()})
	require.NoError(t, err)
	assert.Equal(t, "pat@example.edu", got.GetUser().GetEmail())
	_, err = c.GetUser(ctx, &adminv1.GetUserRequest{Id: 4242})
	requireCode(t, err, codes.NotFound, "")
	_, err = c.GetUser(ctx, &adminv1.GetUserRequest{})
	requireCode(t, err, codes.InvalidArgument, "id is required")

	list, err := c.ListUsers(ctx, &adminv1.ListUsersRequest{Search: "PA", Limit: 10})
	require.NoError(t, err)
	assert.Equal(t, int64(1), list.GetTotal())
	_, err = c.ListUsers(ctx, &adminv1.ListUsersRequest{Limit: 5000})
	requireCode(t, err, codes.InvalidArgument, "limit")

	groups, err = c.ListGroups(ctx, &adminv1.ListGroupsRequest{})
	require.NoError(t, err)
	for _, g := range groups.GetGroups() {
		if g.GetName() == store.GroupStudent {
			assert.Equal(t, int32(1), g.GetUserCount())
		}
	}
}

func TestAdminServerKeys(t *testing.T) {
	t.Parallel()
	f, c := startAdmin(t)
	ctx := rpcCtx(t)
	u := f.user(t, "quinn", store.GroupFaculty)

	exp := f.clock.Now().Add(24 * time.Hour)
	resp, err := c.CreateAPIKey(ctx, &adminv1.CreateAPIKeyRequest{
		UserId: u.ID, Name: "ci", ExpiresAt: timestamppb.New(exp), Scopes: []string{ScopeInference},
	})
	require.NoError(t, err)
	full := resp.GetFullKey()
	require.True(t, WellFormedKey(full))
	k := resp.GetApiKey()
	assert.Equal(t, full[:12], k.GetKeyPrefix())
	assert.Equal(t, "quinn", k.GetUsername())
	assert.Equal(t, store.KeyActive, k.GetStatus())
	assert.True(t, exp.Equal(k.GetExpiresAt().AsTime()))
	assert.Nil(t, k.RpmLimit, "no limit of its own")
	p, err := f.svc.Verify(ctx, full)
	require.NoError(t, err)
	assert.Equal(t, k.GetId(), p.APIKeyID)

	limited, err := c.CreateAPIKey(ctx, &adminv1.CreateAPIKeyRequest{UserId: u.ID, Name: "batch", RpmLimit: proto.Int32(12)})
	require.NoError(t, err)
	require.NotNil(t, limited.GetApiKey().RpmLimit)
	assert.Equal(t, int32(12), limited.GetApiKey().GetRpmLimit())
	p, err = f.svc.Verify(ctx, limited.GetFullKey())
	require.NoError(t, err)
	assert.Equal(t, 12, p.KeyRPMLimit)
	assert.Equal(t, 60, p.RPMLimit, "the user's own window keeps the group's limit")
	_, err = c.RevokeAPIKey(ctx, &adminv1.RevokeAPIKeyRequest{Id: limited.GetApiKey().GetId()})
	require.NoError(t, err)

	stored, err := f.st.GetAPIKey(ctx, k.GetId())
	require.NoError(t, err)
	list, err := c.ListAPIKeys(ctx, &adminv1.ListAPIKeysRequest{UserId: u.ID})
	require.NoError(t, err)
	require.Len(t, list.GetApiKeys(), 2)
	js, err := protojson.Marshal(list)
	require.NoError(t, err)
	for _, secret := range []string{full, stored.SHA256, stored.Hash, "argon2"} {
		assert.NotContains(t, string(js), secret, "listings carry no secrets")
	}

	tests := []struct {
		name string
		req  *adminv1.CreateAPIKeyRequest
		code codes.Code
		msg  string
	}{
		{"no user", &adminv1.CreateAPIKeyRequest{Name: "x"}, codes.InvalidArgument, "user_id is required"},
		{"no name", &adminv1.CreateAPIKeyRequest{UserId: u.ID}, codes.InvalidArgument, "name must be"},
		{"bad scope", &adminv1.CreateAPIKeyRequest{UserId: u.ID, Name: "x", Scopes: []string{"root"}}, codes.InvalidArgument, `unknown scope "root"`},
		{"past expiry", &adminv1.CreateAPIKeyRequest{UserId: u.ID, Name: "x", ExpiresAt: timestamppb.New(f.clock.Now().Add(-time.Minute))}, codes.InvalidArgument, "expires_at must be in the future"},
		{"unknown user", &adminv1.CreateAPIKeyRequest{UserId: 777, Name: "x"}, codes.NotFound, ""},
		{"negative rpm", &adminv1.CreateAPIKeyRequest{UserId: u.ID, Name: "x", RpmLimit: proto.Int32(-1)}, codes.InvalidArgument, "rpm_limit must not be negative"},
	}
	for _, tc := range tests {
		_, err := c.CreateAPIKey(ctx, tc.req)
		requireCode(t, err, tc.code, tc.msg)
	}

	for range 2 {
		rev, err := c.RevokeAPIKey(ctx, &adminv1.RevokeAPIKeyRequest{Id: k.GetId()})
		require.NoError(t, err)
		assert.Equal(t, store.KeyRevoked, rev.GetApiKey().GetStatus())
	}
	_, err = f.svc.Verify(ctx, full)
	require.ErrorIs(t, err, ErrCredentialRevoked)
	_, err = c.RevokeAPIKey(ctx, &adminv1.RevokeAPIKeyRequest{Id: 9090})
	requireCode(t, err, codes.NotFound, "")

	revoked, err := c.ListAPIKeys(ctx, &adminv1.ListAPIKeysRequest{Status: store.KeyRevoked})
	require.NoError(t, err)
	assert.Len(t, revoked.GetApiKeys(), 2)
	_, err = c.ListAPIKeys(ctx, &adminv1.ListAPIKeysRequest{Status: "zombie"})
	requireCode(t, err, codes.InvalidArgument, "zombie")

	// An active key past its expiry reads as expired before maintenance runs.
	_, _, err = f.svc.CreateAPIKey(ctx, u.ID, "soon", ptrTime(f.clock.Now().Add(time.Minute)), nil)
	require.NoError(t, err)
	f.clock.Advance(2 * time.Minute)
	active, err := c.ListAPIKeys(ctx, &adminv1.ListAPIKeysRequest{UserId: u.ID})
	require.NoError(t, err)
	var statuses []string
	for _, k := range active.GetApiKeys() {
		statuses = append(statuses, k.GetStatus())
	}
	assert.Equal(t, "revoked,revoked,expired", strings.Join(statuses, ","))
}

func TestAdminServerKeyLimit(t *testing.T) {
	t.Parallel()
	f, c := startAdmin(t)
	ctx := rpcCtx(t)
	u := f.user(t, "rae", store.GroupStudent)
	for range 8 {
		f.key(t, u.ID)
	}
	_, err := c.CreateAPIKey(ctx, &adminv1.CreateAPIKeyRequest{UserId: u.ID, Name: "ninth"})
	requireCode(t, err, codes.FailedPrecondition, "allows 8 active keys")
}

func TestAdminServerUpdateUser(t *testing.T) {
	t.Parallel()
	f, c := startAdmin(t)
	ctx := rpcCtx(t)
	u := f.user(t, "sam", store.GroupStudent)
	_, full := f.key(t, u.ID)
	p, err := f.svc.Verify(ctx, full)
	require.NoError(t, err)
	require.Equal(t, 30, p.RPMLimit)
	staff, err := f.st.GetGroupByName(ctx, store.GroupStaff)
	require.NoError(t, err)

	resp, err := c.UpdateUser(ctx, &adminv1.UpdateUserRequest{
		Id: u.ID, GroupId: proto.Int64(staff.ID), FullName: proto.String("Sam S"),
		RpmLimit: proto.Int32(0), WeightOverride: proto.Int32(5), TokenBudget: proto.Int64(9000),
	})
	require.NoError(t, err)
	got := resp.GetUser()
	assert.Equal(t, store.GroupStaff, got.GetGroupName())
	assert.Equal(t, "Sam S", got.GetFullName())
	assert.True(t, got.GetIsActive(), "left out: unchanged")
	require.NotNil(t, got.RpmLimit, "0 is an override: unlimited")
	assert.Zero(t, got.GetRpmLimit())
	assert.Equal(t, int32(5), got.GetWeightOverride())
	assert.Equal(t, int64(9000), got.GetTokenBudget())
	p, err = f.svc.Verify(ctx, full)
	require.NoError(t, err)
	assert.Equal(t, Principal{
		UserID: u.ID, Username: "sam", APIKeyID: p.APIKeyID, KeyPrefix: full[:12], GroupID: staff.ID, Group: store.GroupStaff,
		Weight: 5, RPMLimit: 0, TokenBudget: 9000,
	}, p, "the next Verify sees the change")

	resp, err = c.UpdateUser(ctx, &adminv1.UpdateUserRequest{
		Id: u.ID, Clear: []string{"rpm_limit", "token_budget", "rpm_limit"}, IsActive: proto.Bool(false),
	})
	require.NoError(t, err)
	got = resp.GetUser()
	assert.Nil(t, got.RpmLimit)
	assert.Nil(t, got.TokenBudget)
	assert.Equal(t, int32(5), got.GetWeightOverride())
	assert.False(t, got.GetIsActive())
	_, err = f.svc.Verify(ctx, full)
	require.ErrorIs(t, err, ErrUserInactive)

	tests := []struct {
		name string
		req  *adminv1.UpdateUserRequest
		code codes.Code
		msg  string
	}{
		{"no id", &adminv1.UpdateUserRequest{}, codes.InvalidArgument, "id is required"},
		{"unknown override", &adminv1.UpdateUserRequest{Id: u.ID, Clear: []string{"scheduler_weight"}}, codes.InvalidArgument, `unknown override "scheduler_weight"`},
		{"set and cleared", &adminv1.UpdateUserRequest{Id: u.ID, TokenBudget: proto.Int64(1), Clear: []string{"token_budget"}}, codes.InvalidArgument, "token_budget is both set and cleared"},
		{"negative rpm", &adminv1.UpdateUserRequest{Id: u.ID, RpmLimit: proto.Int32(-1)}, codes.InvalidArgument, "rpm_limit must not be negative"},
		{"zero weight", &adminv1.UpdateUserRequest{Id: u.ID, WeightOverride: proto.Int32(0)}, codes.InvalidArgument, "weight_override must be at least 1"},
		{"negative budget", &adminv1.UpdateUserRequest{Id: u.ID, TokenBudget: proto.Int64(-1)}, codes.InvalidArgument, "token_budget must not be negative"},
		{"zero group", &adminv1.UpdateUserRequest{Id: u.ID, GroupId: proto.Int64(0)}, codes.InvalidArgument, "group_id must be positive"},
		{"unknown group", &adminv1.UpdateUserRequest{Id: u.ID, GroupId: proto.Int64(999)}, codes.NotFound, "group"},
		{"unknown user", &adminv1.UpdateUserRequest{Id: 4242, FullName: proto.String("x")}, codes.NotFound, ""},
	}
	for _, tc := range tests {
		_, err := c.UpdateUser(ctx, tc.req)
		requireCode(t, err, tc.code, tc.msg)
	}
}

func ptrTime(t time.Time) *time.Time { return &t }
