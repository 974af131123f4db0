package cpclient_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mindrouter/mindrouter/dataplane/internal/cpclient"
	"github.com/mindrouter/mindrouter/dataplane/internal/cpclient/cpclienttest"
	"github.com/mindrouter/mindrouter/dataplane/internal/relay"
)

// BenchmarkAdmit is one Admit through the client against the fake control
// plane (which grants at once), over each transport: what the transport adds
// on both sides, without the real admission's work.
func BenchmarkAdmit(b *testing.B) {
	for _, transport := range []string{"unary", "session"} {
		b.Run(transport, func(b *testing.B) {
			fake := cpclienttest.Start(b)
			fake.Token = token
			fake.SetBackends(cpclienttest.Backend{ID: 1, Name: "gpu1", URL: "http://gpu1:11434", Engine: relay.EngineOllama})
			conn, err := cpclient.Dial(fake.Addr())
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = conn.Close() })
			client, err := cpclient.New(conn, cpclient.Config{ClusterToken: token, ReplicaID: "dp-bench", SessionReleases: true,
				UnaryAdmit: transport == "unary"}, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); _ = client.Run(ctx) }()
			b.Cleanup(func() { cancel(); <-done })
			for deadline := time.Now().Add(5 * time.Second); !client.Connected(); time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					b.Fatal("no session")
				}
			}
			req := admitReq()
			for b.Loop() {
				g, err := client.Admit(ctx, req)
				if err != nil {
					b.Fatal(err)
				}
				_ = client.Release(ctx, relay.Release{LeaseID: g.Lease.ID, Outcome: relay.OutcomeSuccess})
			}
		})
	}
}
