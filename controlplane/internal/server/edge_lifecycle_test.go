package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	adminv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/admin/v1"
	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

func TestPanicsBecomeCountedInternalErrors(t *testing.T) {
	t.Parallel()
	f := newEdgeFixture(t, 5*time.Second)
	ctx := withClusterToken(context.Background(), edgeClusterToken)
	admission := controlplanev1.NewAdmissionServiceClient(f.conn)
	require.Zero(t, f.panicsTotal(t))

	_, err := admission.ListModels(ctx, &controlplanev1.ListModelsRequest{Credential: "panic"})
	st := status.Convert(err)
	require.Equal(t, codes.Internal, st.Code())
	require.Equal(t, "internal error", st.Message(), "the panic value is not sent")
	require.Empty(t, st.Details())
	require.EqualValues(t, 1, f.panicsTotal(t))
	require.EqualValues(t, 1, f.counterValue(t, "mindrouter_cp_panics_total", nil))
	require.EqualValues(t, 1, f.counterValue(t, "mindrouter_cp_grpc_calls_total", map[string]string{
		"method": "/mindrouter.controlplane.v1.AdmissionService/ListModels", "code": "Internal",
	}), "a panicked call is counted with its code")

	// A panic in a stream handler is recovered the same way.
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	stream, err := controlplanev1.NewSessionServiceClient(f.conn).Session(sctx)
	require.NoError(t, err)
	require.NoError(t, stream.Send(&controlplanev1.SessionRequest{Kind: &controlplanev1.SessionRequest_Hello{
		Hello: &controlplanev1.Hello{ReplicaId: "panic"},
	}}))
	_, err = stream.Recv()
	require.Equal(t, codes.Internal, status.Code(err), "%v", err)
	require.Equal(t, "internal error", status.Convert(err).Message())
	require.EqualValues(t, 2, f.panicsTotal(t))

	// The server goes on serving.
	_, err = admission.ListModels(ctx, &controlplanev1.ListModelsRequest{})
	require.NoError(t, err)
	require.EqualValues(t, 2, f.panicsTotal(t))
}

func TestRESTBackendsAreSnakeCaseArrays(t *testing.T) {
	t.Parallel()
	f := newEdgeFixture(t, 5*time.Second)
	auth := bearerHeader(f.adminKey(t))

	code, body := f.rest(t, "GET", "/api/admin/backends", "", auth)
	require.Equal(t, http.StatusOK, code, string(body))
	require.JSONEq(t, `[]`, string(body), "an empty list is an empty array, not null or an object")

	code, body = f.rest(t, "POST", "/api/admin/backends/register",
		`{"name":"gpu1","url":"http://127.0.0.1:11434/","engine":"ollama","max_concurrent":4,"unknown_field":1}`, auth)
	require.Equal(t, http.StatusOK, code, string(body))
	var registered struct {
		Backend map[string]any `json:"backend"`
		Created bool           `json:"created"`
	}
	require.NoError(t, json.Unmarshal(body, &registered))
	require.True(t, registered.Created)

	code, body = f.rest(t, "GET", "/api/admin/backends", "", auth)
	require.Equal(t, http.StatusOK, code, string(body))
	var backends []map[string]any
	require.NoError(t, json.Unmarshal(body, &backends), "a bare JSON array: %s", body)
	require.Len(t, backends, 1)
	b := backends[0]
	require.Equal(t, "gpu1", b["name"])
	require.Equal(t, "http://127.0.0.1:11434", b["url"], "trailing slash dropped")
	require.Equal(t, "ollama", b["engine"])
	require.Equal(t, "healthy", b["status"])
	require.EqualValues(t, 4, b["max_concurrent"])
	require.Equal(t, []any{"llama3.2:3b"}, b["models"])
	for _, field := range []string{"max_concurrent", "current_concurrent", "gpu_memory_gb", "last_error", "consecutive_failures", "created_at", "node_id"} {
		require.Contains(t, b, field, "snake_case field %q, present even when zero", field)
	}
	for field := range b {
		require.Equal(t, strings.ToLower(field), field, "no camelCase field names (%q)", field)
	}

	// A single backend is the object itself (response_body), by id. protojson writes
	// int64 fields as JSON strings ("id":"1"), where the original API wrote numbers;
	// accept both here (reported as a contract question).
	id := fmt.Sprint(b["id"])
	require.NotEmpty(t, id)
	code, body = f.rest(t, "GET", "/api/admin/backends/"+id, "", auth)
	require.Equal(t, http.StatusOK, code, string(body))
	var one map[string]any
	require.NoError(t, json.Unmarshal(body, &one))
	require.Equal(t, "gpu1", one["name"])
}

func TestRESTInvalidInputIsA400WithTheReason(t *testing.T) {
	t.Parallel()
	f := newEdgeFixture(t, 5*time.Second)
	auth := bearerHeader(f.adminKey(t))
	cases := []struct {
		name, body, message string
	}{
		{"unknown engine", `{"name":"b1","url":"http://127.0.0.1:9","engine":"tgi"}`, `engine must be "ollama", "vllm", "tts" or "stt"`},
		{"bad url", `{"name":"b1","url":"ftp://host","engine":"vllm"}`, "url must be an absolute http:// or https:// URL"},
		{"not JSON", `{"name":`, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body := f.rest(t, "POST", "/api/admin/backends/register", tc.body, auth)
			require.Equal(t, http.StatusBadRequest, code, string(body))
			var e struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			}
			require.NoError(t, json.Unmarshal(body, &e), "errors are JSON: %s", body)
			require.Equal(t, int(codes.InvalidArgument), e.Code)
			require.Contains(t, e.Message, tc.message)
		})
	}
	code, body := f.rest(t, "GET", "/api/admin/backends", "", auth)
	require.Equal(t, http.StatusOK, code)
	require.JSONEq(t, `[]`, string(body), "nothing was registered")
}

func TestRESTProbesAndDocuments(t *testing.T) {
	t.Parallel()
	f := newEdgeFixture(t, 5*time.Second)

	code, body := f.rest(t, "GET", "/healthz", "", nil)
	require.Equal(t, http.StatusOK, code)
	var alive struct{ Status, Timestamp string }
	require.NoError(t, json.Unmarshal(body, &alive))
	require.Equal(t, "alive", alive.Status)
	_, err := time.Parse(time.RFC3339, alive.Timestamp)
	require.NoError(t, err)

	code, body = f.rest(t, "GET", "/readyz", "", nil)
	require.Equal(t, http.StatusOK, code)
	require.JSONEq(t, `{"status":"ready"}`, string(body))
	f.unready.Store(true)
	code, body = f.rest(t, "GET", "/readyz", "", nil)
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.JSONEq(t, `{"status":"not_ready"}`, string(body), "the cause is logged, not sent")
	code, _ = f.rest(t, "GET", "/healthz", "", nil)
	require.Equal(t, http.StatusOK, code, "liveness does not depend on readiness")
	f.unready.Store(false)
	code, _ = f.rest(t, "GET", "/readyz", "", nil)
	require.Equal(t, http.StatusOK, code)

	code, body = f.rest(t, "GET", "/openapi.json", "", nil)
	require.Equal(t, http.StatusOK, code)
	var doc struct {
		Swagger string         `json:"swagger"`
		Paths   map[string]any `json:"paths"`
	}
	require.NoError(t, json.Unmarshal(body, &doc))
	require.Equal(t, "2.0", doc.Swagger)
	for _, p := range []string{"/api/admin/backends", "/api/admin/backends/register", "/api/admin/backends/{id}",
		"/api/admin/users", "/api/admin/groups", "/api/admin/api-keys/{id}/revoke", "/api/admin/models", "/api/admin/nodes"} {
		require.Contains(t, doc.Paths, p)
	}

	code, _ = f.rest(t, "GET", "/api/admin/no-such-thing", "", bearerHeader(f.adminKey(t)))
	require.Equal(t, http.StatusNotFound, code)
	code, _ = f.rest(t, "GET", "/no-such-thing", "", nil)
	require.Equal(t, http.StatusNotFound, code)
	code, _ = f.rest(t, "POST", "/healthz", "", nil)
	require.Equal(t, http.StatusMethodNotAllowed, code)
}

func TestMetricsCountCallsByMethodAndCode(t *testing.T) {
	t.Parallel()
	f := newEdgeFixture(t, 5*time.Second)
	admin := f.adminKey(t)
	reg := adminv1.NewRegistryServiceClient(f.conn)
	for range 2 {
		_, err := reg.ListBackends(withKey(admin), &adminv1.ListBackendsRequest{})
		require.NoError(t, err)
	}
	code, _ := f.rest(t, "GET", "/api/admin/backends", "", bearerHeader(admin)) // through the gateway: counted too
	require.Equal(t, http.StatusOK, code)
	for range 3 {
		_, err := reg.ListBackends(context.Background(), &adminv1.ListBackendsRequest{})
		require.Equal(t, codes.Unauthenticated, status.Code(err))
	}
	_, err := controlplanev1.NewAdmissionServiceClient(f.conn).Admit(
		withClusterToken(context.Background(), edgeClusterToken), &controlplanev1.AdmitRequest{RequestId: "r"})
	require.NoError(t, err)

	code, body := f.rest(t, "GET", "/metrics", "", nil)
	require.Equal(t, http.StatusOK, code)
	text := string(body)
	for _, line := range []string{
		`mindrouter_cp_grpc_calls_total{code="OK",method="/mindrouter.admin.v1.RegistryService/ListBackends"} 3`,
		`mindrouter_cp_grpc_calls_total{code="Unauthenticated",method="/mindrouter.admin.v1.RegistryService/ListBackends"} 3`,
		`mindrouter_cp_grpc_calls_total{code="OK",method="/mindrouter.controlplane.v1.AdmissionService/Admit"} 1`,
		`mindrouter_cp_panics_total 0`,
	} {
		require.True(t, slices.Contains(strings.Split(text, "\n"), line), "missing %q in:\n%s", line, grepLines(text, "mindrouter_cp_"))
	}
	require.Contains(t, text, "mindrouter_identity_", "the components' metrics are on the same registry")
}

// grepLines returns the lines of text that contain s.
func grepLines(text, s string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestReflectionAndHealth(t *testing.T) {
	t.Parallel()
	f := newEdgeFixture(t, 5*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	h, err := healthpb.NewHealthClient(f.conn).Check(ctx, &healthpb.HealthCheckRequest{})
	require.NoError(t, err, "health needs no credential")
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, h.GetStatus())

	stream, err := reflectionpb.NewServerReflectionClient(f.conn).ServerReflectionInfo(ctx)
	require.NoError(t, err)
	require.NoError(t, stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{},
	}))
	resp, err := stream.Recv()
	require.NoError(t, err)
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	for _, want := range []string{
		"mindrouter.controlplane.v1.AdmissionService", "mindrouter.controlplane.v1.SessionService",
		"mindrouter.admin.v1.RegistryService", "mindrouter.admin.v1.IdentityService",
		"mindrouter.nodeagent.v1.TelemetryService", "grpc.health.v1.Health",
	} {
		require.Contains(t, names, want)
	}

	// The descriptors resolve too, which is what grpcurl needs to call a method.
	require.NoError(t, stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: "mindrouter.admin.v1.RegistryService"},
	}))
	resp, err = stream.Recv()
	require.NoError(t, err)
	require.Nil(t, resp.GetErrorResponse())
	require.NotEmpty(t, resp.GetFileDescriptorResponse().GetFileDescriptorProto())
}

func TestShutdownWithAnOpenSession(t *testing.T) {
	t.Parallel()
	const shutdownTimeout = time.Second
	f := newEdgeFixture(t, shutdownTimeout)
	ctx, cancel := context.WithTimeout(withClusterToken(context.Background(), edgeClusterToken), 30*time.Second)
	defer cancel()
	stream, err := controlplanev1.NewSessionServiceClient(f.conn).Session(ctx)
	require.NoError(t, err)
	require.NoError(t, stream.Send(&controlplanev1.SessionRequest{Kind: &controlplanev1.SessionRequest_Hello{
		Hello: &controlplanev1.Hello{ReplicaId: "dp-1"},
	}}))
	welcome, err := stream.Recv()
	require.NoError(t, err)
	require.NotNil(t, welcome.GetWelcome())

	// The session never ends by itself: Serve must still return, cleanly, once the
	// grace period is over.
	took, err := f.stop(t, shutdownTimeout+10*time.Second)
	require.NoError(t, err)
	require.Less(t, took, shutdownTimeout+5*time.Second)

	_, err = stream.Recv()
	require.Error(t, err, "the open stream is ended")
	requireRefused(t, f)
}

func TestShutdownIdleIsPromptAndLetsCallsFinish(t *testing.T) {
	t.Parallel()
	const shutdownTimeout = 30 * time.Second
	f := newEdgeFixture(t, shutdownTimeout)
	admin := f.adminKey(t)
	// Warm both the client connection and the gateway's connection to gRPC, which
	// must not hold graceful shutdown open.
	code, _ := f.rest(t, "GET", "/api/admin/groups", "", bearerHeader(admin))
	require.Equal(t, http.StatusOK, code)

	// One unary call is in flight when shutdown begins.
	admitted := make(chan error, 1)
	go func() {
		_, err := controlplanev1.NewAdmissionServiceClient(f.conn).Admit(
			withClusterToken(context.Background(), edgeClusterToken), &controlplanev1.AdmitRequest{RequestId: "hold"})
		admitted <- err
	}()
	select {
	case <-f.adm.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("Admit did not reach the handler")
	}

	start := time.Now()
	f.cancel()
	// The REST listener closes first; then let the call in flight finish.
	require.Eventually(t, func() bool { return !dialable(f.restURL) }, 10*time.Second, 10*time.Millisecond)
	close(f.adm.gate)
	require.NoError(t, <-admitted, "the call in flight completes during graceful shutdown")

	select {
	case err := <-f.done:
		f.done <- err // for the cleanup
		require.NoError(t, err)
	case <-time.After(shutdownTimeout):
		t.Fatal("Serve did not return")
	}
	require.Less(t, time.Since(start), 10*time.Second, "idle connections do not hold shutdown for the whole timeout")
	requireRefused(t, f)
}

// dialable reports whether a TCP connection to the URL's host succeeds.
func dialable(rawURL string) bool {
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(rawURL, "http://"), time.Second)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

// requireRefused checks that a stopped server answers nothing more.
func requireRefused(t *testing.T, f *edgeFixture) {
	t.Helper()
	require.False(t, dialable(f.restURL), "REST listener closed")
	require.False(t, dialable("http://"+f.grpcAddr), "gRPC listener closed")
}
