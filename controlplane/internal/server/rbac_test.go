package server

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/mindrouter/mindrouter/controlplane/internal/store/storetest"
	adminv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/admin/v1"
)

var updateRBAC = flag.Bool("update-rbac", false, "rewrite testdata/rbac.txt from what the server does (review the diff!)")

// rbacPrincipals are the matrix's columns, in the table's order.
var rbacPrincipals = []string{"anonymous", "user-key", "user-session", "auditor", "admin", "cluster", "node-agent"}

const rbacTable = "testdata/rbac.txt"

// rbacNode is the node whose agent secret the node-agent column presents.
const rbacNode, rbacNodeSecret = "rbac-node", "rbac-node-secret-0123456789"

// TestRBACMatrix calls every method of every service the server registers as
// each kind of caller and compares allowed (anything but UNAUTHENTICATED and
// PERMISSION_DENIED) or denied with testdata/rbac.txt. A method without a row,
// or a row without a method, fails the test: a new method cannot ship without
// a decision about who may call it.
func TestRBACMatrix(t *testing.T) {
	t.Parallel()
	t.Run("SQLite", func(t *testing.T) {
		t.Parallel()
		runRBACMatrix(t, startServer(t))
	})
	t.Run("MariaDB", func(t *testing.T) {
		t.Parallel()
		runRBACMatrix(t, startServerOn(t, storetest.MariaDB(t)))
	})
}

func runRBACMatrix(t *testing.T, s *testServer) {
	conn := dial(t, s.grpcAddr)
	ctxs := s.rbacContexts(t, conn)

	methods := registeredMethods(s.srv.grpc)
	// The first call with a key verifies it (Argon2, slow under -race on a
	// loaded machine); do that once per column with a generous deadline so
	// a stream's short deadline below never expires in authentication.
	for _, who := range rbacPrincipals {
		warm, cancel := context.WithTimeout(ctxs[who], unaryTimeout)
		_, _ = adminv1.NewIdentityServiceClient(conn).ListGroups(warm, &adminv1.ListGroupsRequest{})
		cancel()
	}
	got := map[string][]string{}
	for _, m := range methods {
		for _, who := range rbacPrincipals {
			before := s.signInCalls.Load()
			outcome := callOutcome(ctxs[who], conn, m)
			if s.signInCalls.Load() != before {
				outcome = "allow" // the handler itself refused (a failed sign-in)
			}
			got[m.name] = append(got[m.name], outcome)
		}
	}
	if *updateRBAC {
		writeRBACTable(t, methods, got)
	}
	want := readRBACTable(t)
	for _, m := range methods {
		row, ok := want[m.name]
		require.True(t, ok, "%s has no row in %s: decide who may call it and add one", m.name, rbacTable)
		for i, who := range rbacPrincipals {
			if row[i] != got[m.name][i] {
				t.Errorf("%s as %s: want %s, got %s", m.name, who, row[i], got[m.name][i])
			}
		}
	}
	for name := range want {
		require.True(t, slices.ContainsFunc(methods, func(m rpcMethod) bool { return m.name == name }),
			"%s has a row but is not served: remove it", name)
	}

	// The REST gateway dials the same gRPC server, so each admin route must
	// answer as its method does for every caller REST can express.
	s.checkRESTMatchesGRPC(t, want)
}

type rpcMethod struct {
	name                       string
	clientStream, serverStream bool
}

func registeredMethods(srv *grpc.Server) []rpcMethod {
	var out []rpcMethod
	for svc, info := range srv.GetServiceInfo() {
		for _, m := range info.Methods {
			out = append(out, rpcMethod{name: "/" + svc + "/" + m.Name, clientStream: m.IsClientStream, serverStream: m.IsServerStream})
		}
	}
	slices.SortFunc(out, func(a, b rpcMethod) int { return strings.Compare(a.name, b.name) })
	return out
}

// rbacContexts returns each column's credentials as outgoing metadata.
func (s *testServer) rbacContexts(t *testing.T, conn *grpc.ClientConn) map[string]context.Context {
	t.Helper()
	admin := keyCtx(s.keys["admin"])
	_, err := adminv1.NewRegistryServiceClient(conn).RegisterNode(admin,
		&adminv1.RegisterNodeRequest{Name: rbacNode, Hostname: "gpu-1", AgentSecret: rbacNodeSecret})
	require.NoError(t, err)
	student := s.signIn(t, "student")
	return map[string]context.Context{
		"anonymous":    context.Background(),
		"user-key":     keyCtx(s.keys["student"]),
		"user-session": sessionCtx(student.SessionToken, student.CsrfToken),
		"auditor":      keyCtx(s.keys["auditor"]),
		"admin":        admin,
		"cluster":      metadata.AppendToOutgoingContext(context.Background(), ClusterTokenHeader, testClusterToken),
		"node-agent": metadata.AppendToOutgoingContext(context.Background(),
			"x-mindrouter-node", rbacNode, "authorization", "Bearer "+rbacNodeSecret),
	}
}

// callOutcome calls m once with an empty message (which handlers refuse as
// invalid, touching nothing) and reports allow or deny.
func callOutcome(ctx context.Context, conn *grpc.ClientConn, m rpcMethod) string {
	req := &emptypb.Empty{}
	var err error
	if !m.clientStream && !m.serverStream {
		// A unary call never waits for more input: a deadline here is a
		// slow machine, not a decision, and must not read as allow.
		ctx, cancel := context.WithTimeout(ctx, unaryTimeout)
		defer cancel()
		err = conn.Invoke(ctx, m.name, req, &emptypb.Empty{})
		if status.Code(err) == codes.DeadlineExceeded {
			return "timeout"
		}
	} else {
		ctx, cancel := context.WithTimeout(ctx, rpcTimeout)
		defer cancel()
		var cs grpc.ClientStream
		cs, err = conn.NewStream(ctx, &grpc.StreamDesc{ClientStreams: m.clientStream, ServerStreams: m.serverStream}, m.name)
		if err == nil {
			_ = cs.SendMsg(req)
			_ = cs.CloseSend()
			err = cs.RecvMsg(&emptypb.Empty{})
		}
	}
	// Anything else, a deadline included (a stream let in that waits for
	// more), got past authorization.
	switch status.Code(err) {
	case codes.Unauthenticated, codes.PermissionDenied:
		return "deny"
	}
	return "allow"
}

// rpcTimeout bounds a stream the server let in (it waits for more input);
// unaryTimeout bounds a unary call, which always answers.
const rpcTimeout, unaryTimeout = 5 * time.Second, time.Minute

var rowRE = regexp.MustCompile(`^(/\S+)\s+(.*)$`)

func readRBACTable(t *testing.T) map[string][]string {
	t.Helper()
	f, err := os.Open(rbacTable)
	require.NoError(t, err)
	defer f.Close()
	out := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := rowRE.FindStringSubmatch(line)
		require.NotNil(t, m, "bad row %q", line)
		cells := strings.Fields(m[2])
		require.Len(t, cells, len(rbacPrincipals), "row %q needs one cell per column %v", line, rbacPrincipals)
		for _, c := range cells {
			require.Contains(t, []string{"allow", "deny"}, c, "row %q", line)
		}
		_, dup := out[m[1]]
		require.False(t, dup, "two rows for %s", m[1])
		out[m[1]] = cells
	}
	require.NoError(t, sc.Err())
	return out
}

func writeRBACTable(t *testing.T, methods []rpcMethod, got map[string][]string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("# Who may call each gRPC method of the control plane (TestRBACMatrix).\n")
	b.WriteString("# allow: the call passes authorization; deny: UNAUTHENTICATED or PERMISSION_DENIED.\n")
	b.WriteString("# user-key: an API key of the student group with the admin scope; user-session: a student's\n")
	b.WriteString("# browser session with its CSRF token; auditor and admin: API keys with the admin scope of those\n")
	b.WriteString("# groups; cluster: the data planes' cluster token; node-agent: a registered node's agent secret.\n")
	fmt.Fprintf(&b, "# %-62s %s\n", "method", strings.Join(rbacPrincipals, " "))
	for _, m := range methods {
		fmt.Fprintf(&b, "%-64s %s\n", m.name, strings.Join(got[m.name], " "))
	}
	require.NoError(t, os.WriteFile(rbacTable, []byte(b.String()), 0o644))
}

// checkRESTMatchesGRPC calls every /api/admin route of the OpenAPI document on
// the REST port with no key, a user key, an auditor key and an admin key, and
// requires 401/403 exactly where the route's method is denied to that caller.
// Account routes are not served on the control plane's port (data planes serve
// them) and must be 404 there.
func (s *testServer) checkRESTMatchesGRPC(t *testing.T, want map[string][]string) {
	t.Helper()
	code, body := s.rest(t, "GET", "/openapi.json", "", "", "")
	require.Equal(t, http.StatusOK, code)
	var doc struct {
		Paths map[string]map[string]struct {
			OperationID string `json:"operationId"`
			Tags        []string
		} `json:"paths"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &doc))
	services := map[string]string{}
	for name := range want {
		svc, method, _ := strings.Cut(strings.TrimPrefix(name, "/"), "/")
		services[svc[strings.LastIndex(svc, ".")+1:]+"_"+method] = name
	}
	column := map[string]int{}
	for i, p := range rbacPrincipals {
		column[p] = i
	}
	callers := []struct{ column, header, value string }{
		{"anonymous", "", ""},
		{"user-key", "Authorization", "Bearer " + s.keys["student"]},
		{"auditor", "Authorization", "Bearer " + s.keys["auditor"]},
		{"admin", "Authorization", "Bearer " + s.keys["admin"]},
	}
	idRE := regexp.MustCompile(`\{[^}]+\}`)
	routes := 0
	for path, ops := range doc.Paths {
		concrete := idRE.ReplaceAllString(path, "0")
		for verb, op := range ops {
			method, ok := services[op.OperationID]
			if !ok {
				// An additional binding's operation is numbered: GetModelJob2.
				method, ok = services[strings.TrimRight(op.OperationID, "0123456789")]
			}
			require.True(t, ok, "route %s %s: operation %s has no gRPC row", verb, path, op.OperationID)
			routes++
			for _, c := range callers {
				got, _ := s.rest(t, strings.ToUpper(verb), concrete, c.header, c.value, "{}")
				if strings.HasPrefix(path, "/api/account/") {
					require.Equal(t, http.StatusNotFound, got, "%s %s is served by data planes only", verb, path)
					continue
				}
				denied := got == http.StatusUnauthorized || got == http.StatusForbidden
				require.Equal(t, want[method][column[c.column]] == "deny", denied,
					"%s %s as %s answered %d; %s is %s", verb, path, c.column, got, method, want[method][column[c.column]])
			}
		}
	}
	require.Positive(t, routes)
}
