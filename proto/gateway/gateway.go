// Package gateway lists the admin services the REST gateway serves, so the
// control plane's REST port and every data plane's admin gateway expose the
// same routes: a service added here appears on both (each time one was added to
// only one of the two lists, the data plane's RBAC matrix found the gap as 404s).
package gateway

import (
	"context"
	"fmt"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"

	adminv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/admin/v1"
	auditv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/audit/v1"
)

type service struct {
	name     string
	register func(context.Context, *runtime.ServeMux, *grpc.ClientConn) error
}

// admin are the services behind /api/admin on both planes.
var admin = []service{
	{"registry", adminv1.RegisterRegistryServiceHandler},
	{"identity", adminv1.RegisterIdentityServiceHandler},
	{"scheduler", adminv1.RegisterSchedulerServiceHandler},
	{"audit", auditv1.RegisterAuditServiceHandler},
	{"telemetry history", adminv1.RegisterTelemetryHistoryServiceHandler},
	{"catalog", adminv1.RegisterCatalogServiceHandler},
	{"alert", adminv1.RegisterAlertServiceHandler},
	{"system", adminv1.RegisterSystemServiceHandler},
	{"model jobs", adminv1.RegisterModelJobServiceHandler},
}

// RegisterAdmin registers every admin service's REST routes on mux, served
// through conn.
func RegisterAdmin(ctx context.Context, mux *runtime.ServeMux, conn *grpc.ClientConn) error {
	for _, s := range admin {
		if err := s.register(ctx, mux, conn); err != nil {
			return fmt.Errorf("register %s gateway: %w", s.name, err)
		}
	}
	return nil
}
