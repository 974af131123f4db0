package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/mindrouter/mindrouter/controlplane/internal/admission"
	"github.com/mindrouter/mindrouter/controlplane/internal/app"
	"github.com/mindrouter/mindrouter/controlplane/internal/fairshare"
	"github.com/mindrouter/mindrouter/controlplane/internal/identity"
	"github.com/mindrouter/mindrouter/controlplane/internal/quota"
	"github.com/mindrouter/mindrouter/controlplane/internal/registry"
	"github.com/mindrouter/mindrouter/controlplane/internal/server"
	adminv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/admin/v1"
	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
	nodeagentv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/nodeagent/v1"
)

// benchModel is the one model every backend serves.
const benchModel = "bench-model"

// clusterToken authenticates the load generator as a data-plane replica.
const clusterToken = "admitbench-cluster-token"

// groups cycle over the users, with the default group weights.
var groups = []struct {
	name   string
	weight int
}{{"student", 1}, {"staff", 2}, {"faculty", 3}, {"admin", 10}}

// userKey is the API key of user i.
func userKey(i int) string { return fmt.Sprintf("mr2_bench_%04d", i) }

// benchIdentity knows one key per user; no database is involved, as in
// production once identity's verification cache is warm.
type benchIdentity struct {
	keys map[string]admission.Principal
}

func newBenchIdentity(users int) *benchIdentity {
	id := &benchIdentity{keys: make(map[string]admission.Principal, users)}
	for i := range users {
		g := groups[i%len(groups)]
		id.keys[userKey(i)] = admission.Principal{
			UserID: int64(i + 1), Username: fmt.Sprintf("user%04d", i), APIKeyID: int64(i + 1),
			KeyPrefix: userKey(i)[:12], Group: g.name, Inference: true, Weight: g.weight,
		}
	}
	return id
}

var errInvalidKey = identity.ErrInvalidCredential

func (b *benchIdentity) Verify(_ context.Context, credential string) (admission.Principal, error) {
	p, ok := b.keys[credential]
	if !ok {
		return admission.Principal{}, errInvalidKey
	}
	return p, nil
}

// benchRegistry serves one model on a fixed set of healthy backends.
type benchRegistry struct {
	cands []admission.Candidate
}

func newBenchRegistry(backends, slots int) *benchRegistry {
	r := &benchRegistry{}
	for i := range backends {
		r.cands = append(r.cands, admission.Candidate{
			BackendID: int64(i + 1), BackendName: fmt.Sprintf("gpu%d", i+1), URL: fmt.Sprintf("http://gpu%d:8000", i+1),
			Engine: controlplanev1.Engine_ENGINE_VLLM, MaxConcurrent: slots, Model: benchModel, ContextLength: 32768, Loaded: true,
		})
	}
	return r
}

func (r *benchRegistry) Candidates(model string, _ controlplanev1.Operation, _ []controlplanev1.Capability) ([]admission.Candidate, error) {
	if model != benchModel {
		return nil, fmt.Errorf("model %q: %w", model, errors.New("not found"))
	}
	return r.cands, nil
}

func (r *benchRegistry) Catalog() []*controlplanev1.CatalogModel {
	return []*controlplanev1.CatalogModel{{Name: benchModel}}
}
func (r *benchRegistry) Subscribe() (<-chan struct{}, func()) { return nil, func() {} }
func (r *benchRegistry) Version() int64                       { return 1 }
func (r *benchRegistry) Observe(int64, registry.Observation)  {}
func (r *benchRegistry) AcquireCircuit(int64) (bool, bool)    { return true, false }
func (r *benchRegistry) AbandonTrial(int64)                   {}
func (r *benchRegistry) MarkLoaded(int64, string)             {}
func (r *benchRegistry) ContextCap() int64                    { return 32768 }

// denyAll refuses every admin credential: the benchmark calls only the cluster
// methods.
type denyAll struct{}

func (denyAll) Verify(context.Context, string) (identity.Principal, error) {
	return identity.Principal{}, identity.ErrInvalidCredential
}

// core is an in-process control plane: admission and the scheduler over fake
// identity and registry, behind the production gRPC server (its interceptors,
// authorization, error mapping and OpenTelemetry stats handler) on loopback.
type core struct {
	addr string
	adm  *admission.Server
	stop func() error
}

func startCore(ctx context.Context, cfg config) (*core, error) {
	reg := prometheus.NewRegistry()
	log := slog.New(slog.DiscardHandler)
	queue, err := app.NewQueue(app.QueueConfig{Policy: cfg.policy, FairShare: fairshare.DefaultParams()}, reg, log)
	if err != nil {
		return nil, err
	}
	// As in production: every Admit reserves quota and every Release settles it
	// (the benchmark users have no budget and no rate limit, so none is refused).
	quotas, err := quota.New(quota.Options{MaxConcurrentPerUser: -1, Logger: log, Registerer: reg})
	if err != nil {
		return nil, err
	}
	adm, err := admission.New(newBenchIdentity(cfg.users), newBenchRegistry(cfg.backends, cfg.slots), queue, admission.Options{
		Accountant: app.Accountant(quotas), Logger: log, Registerer: reg,
	})
	if err != nil {
		return nil, err
	}
	// As in production without an OTLP endpoint: no tracing instrumentation.
	var tracer trace.TracerProvider
	switch cfg.tracing {
	case "sdk":
		tracer = sdktrace.NewTracerProvider() // spans recorded, as with an exporter
	case "noop":
		tracer = noop.NewTracerProvider()
	}
	srv := server.New(server.Options{
		Services: server.Services{
			Admission: adm, Session: adm,
			Registry:  adminv1.UnimplementedRegistryServiceServer{},
			Identity:  adminv1.UnimplementedIdentityServiceServer{},
			Telemetry: nodeagentv1.UnimplementedTelemetryServiceServer{},
		},
		Verifier: denyAll{}, ClusterToken: clusterToken,
		Logger: log, Registerer: reg, Gatherer: reg, TracerProvider: tracer,
		Propagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
	})
	grpcLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen gRPC: %w", err)
	}
	restLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = grpcLis.Close()
		return nil, fmt.Errorf("listen REST: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Go(func() { errs <- srv.Serve(ctx, grpcLis, restLis, 0) })
	wg.Go(func() { errs <- adm.Run(ctx) })
	return &core{addr: grpcLis.Addr().String(), adm: adm, stop: func() error {
		cancel()
		wg.Wait()
		close(errs)
		var all []error
		for err := range errs {
			all = append(all, err)
		}
		if sdk, ok := tracer.(*sdktrace.TracerProvider); ok {
			_ = sdk.Shutdown(context.Background())
		}
		return errors.Join(all...)
	}}, nil
}
