package server

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mindrouter/mindrouter/dataplane/internal/signin"
	"github.com/mindrouter/mindrouter/proto/gateway"
	accountv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/account/v1"
)

// AdminGateway returns the REST admin API (/api/admin/...) and the account API
// (/api/account/...) as a grpc-gateway over conn, the same connection the data
// plane uses for admission. Requests reach the control plane as ordinary gRPC
// calls, so its interceptors authenticate (the client's Authorization or
// X-API-Key header, or its session cookie and X-CSRF-Token header, are
// forwarded as metadata) and audit them. The JSON options match the control
// plane's own gateway, so both serve byte-identical bodies.
func AdminGateway(ctx context.Context, conn *grpc.ClientConn) (http.Handler, error) {
	mux := runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, gateway.Marshaler()),
		runtime.WithIncomingHeaderMatcher(adminHeaders),
		runtime.WithErrorHandler(adminError),
		runtime.WithMetadata(signin.Metadata),
	)
	if err := gateway.RegisterAdmin(ctx, mux, conn); err != nil {
		return nil, err
	}
	if err := accountv1.RegisterAccountServiceHandler(ctx, mux, conn); err != nil {
		return nil, fmt.Errorf("register account gateway: %w", err)
	}
	if err := accountv1.RegisterConversationServiceHandler(ctx, mux, conn); err != nil {
		return nil, fmt.Errorf("register conversation gateway: %w", err)
	}
	return mux, nil
}

// adminError writes the gateway's usual error body, except that an
// Unavailable without details (the gRPC client's own transport errors, which
// name addresses, or a control plane shutting down) says only that the
// control plane is unavailable, with a Retry-After. A refusal with a RetryInfo
// (the control plane's database is unavailable) gets its Retry-After, like on
// the control plane's own REST port.
func adminError(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	if st, ok := status.FromError(err); ok && st.Code() == codes.Unavailable && len(st.Details()) == 0 {
		w.Header().Set("Retry-After", "2")
		err = status.Error(codes.Unavailable, "the control plane is unavailable; retry shortly")
	} else if ok {
		for _, d := range st.Details() {
			if ri, isRetry := d.(*errdetails.RetryInfo); isRetry && ri.GetRetryDelay().AsDuration() > 0 {
				w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(ri.GetRetryDelay().AsDuration().Seconds()))))
			}
		}
	}
	runtime.DefaultHTTPErrorHandler(ctx, mux, m, w, r, err)
}

// adminHeaders forwards the gateway's defaults (Authorization among them) plus
// the X-API-Key credential header and the request id. Metadata a client could
// use to pose as a data-plane replica (x-mindrouter-*, reachable through the
// gateway's Grpc-Metadata- prefix) is never forwarded.
func adminHeaders(key string) (string, bool) {
	switch strings.ToLower(key) {
	case "x-api-key":
		return "x-api-key", true
	case "x-request-id":
		return "x-request-id", true
	}
	md, ok := runtime.DefaultHeaderMatcher(key)
	if !ok || strings.HasPrefix(strings.ToLower(md), "x-mindrouter-") {
		return "", false
	}
	return md, true
}
