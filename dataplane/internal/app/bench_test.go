package app

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mindrouter/mindrouter/dataplane/internal/config"
	"github.com/mindrouter/mindrouter/dataplane/internal/cpclient/cpclienttest"
	"github.com/mindrouter/mindrouter/dataplane/internal/enginesim"
	"github.com/mindrouter/mindrouter/dataplane/internal/relay"
)

// BenchmarkGateway measures one client request through the whole data plane as
// Run wires it (tracing set up as without an exporter): HTTP in, Admit and
// Release over gRPC to the fake control plane, the simulated vLLM over HTTP,
// all on loopback in this process. Its figures include the fake and the
// simulator; compare them between revisions, not with loadbench.
func BenchmarkGateway(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	shutdownTracing, spans, err := setupTracing(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = shutdownTracing(context.Background()) })

	sim := httptest.NewServer(enginesim.New(enginesim.Config{Engine: enginesim.EngineVLLM, CompletionTokens: 16}).Handler())
	b.Cleanup(sim.Close)
	fake := cpclienttest.Start(b)
	fake.SetBackends(cpclienttest.Backend{ID: 1, Name: "sim", URL: sim.URL, Engine: relay.EngineVLLM, Model: "sim-llama"})
	cfg := config.NewDefault()
	cfg.ControlPlaneAddr, cfg.ClusterToken, cfg.ReplicaID = fake.Addr(), "tok", "dp-bench"
	a, err := New(cfg, slog.New(slog.DiscardHandler), spans)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = a.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, ln) }()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Logf("serve: %v", err)
		}
	})
	url := "http://" + ln.Addr().String() + "/v1/chat/completions"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	post := func(b *testing.B, body string) {
		req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer mr2_bench")
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	const chat = `{"model":"llama3.2","max_tokens":16,"messages":[{"role":"user","content":"Tell me a story."}]`
	post(b, chat+"}") // connect, and wait for the control plane session
	for _, bc := range []struct{ name, body string }{
		{"chat", chat + "}"},
		{"stream", chat + `,"stream":true}`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				post(b, bc.body)
			}
		})
		b.Run(bc.name+"-parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					post(b, bc.body)
				}
			})
		})
	}
}
