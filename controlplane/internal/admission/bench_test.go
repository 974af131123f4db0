package admission

import (
	"context"
	"testing"

	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

// admitter is what both the Server and a gRPC client offer.
type admitter interface {
	admit(ctx context.Context, req *controlplanev1.AdmitRequest) (*controlplanev1.AdmitResponse, error)
	release(ctx context.Context, req *controlplanev1.ReleaseRequest) (*controlplanev1.ReleaseResponse, error)
}

type direct struct{ s *Server }

func (d direct) admit(ctx context.Context, r *controlplanev1.AdmitRequest) (*controlplanev1.AdmitResponse, error) {
	return d.s.Admit(ctx, r)
}

func (d direct) release(ctx context.Context, r *controlplanev1.ReleaseRequest) (*controlplanev1.ReleaseResponse, error) {
	return d.s.Release(ctx, r)
}

type remote struct {
	c controlplanev1.AdmissionServiceClient
}

func (r remote) admit(ctx context.Context, req *controlplanev1.AdmitRequest) (*controlplanev1.AdmitResponse, error) {
	return r.c.Admit(ctx, req)
}

func (r remote) release(ctx context.Context, req *controlplanev1.ReleaseRequest) (*controlplanev1.ReleaseResponse, error) {
	return r.c.Release(ctx, req)
}

// BenchmarkAdmitRelease measures one Admit plus its Release on the happy path (a
// free slot), in process and over a real gRPC loopback connection, serially and
// with GOMAXPROCS concurrent callers.
func BenchmarkAdmitRelease(b *testing.B) {
	h := newHarness(b, Options{}, backendCand(1, 100_000), backendCand(2, 100_000))
	for _, tc := range []struct {
		name string
		a    admitter
	}{
		{"inprocess", direct{h.srv}},
		{"grpc", remote{h.admit}},
	} {
		run := func(b *testing.B, ctx context.Context) {
			req := h.admitReq("bench")
			req.ReplicaId = "dp-1"
			resp, err := tc.a.admit(ctx, req)
			if err != nil {
				b.Fatal(err)
			}
			_, err = tc.a.release(ctx, &controlplanev1.ReleaseRequest{
				LeaseId: resp.GetLease().GetLeaseId(), Outcome: controlplanev1.Outcome_OUTCOME_SUCCESS,
				Usage: &controlplanev1.Usage{PromptTokens: 100, CompletionTokens: 20},
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			ctx := context.Background()
			for b.Loop() {
				run(b, ctx)
			}
		})
		b.Run(tc.name+"-parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					run(b, ctx)
				}
			})
		})
	}
}
