package relay_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/cpclient"
	"github.com/mindrouter/mindrouter/dataplane/internal/cpclient/cpclienttest"
	"github.com/mindrouter/mindrouter/dataplane/internal/engine"
	"github.com/mindrouter/mindrouter/dataplane/internal/engine/ollama"
	"github.com/mindrouter/mindrouter/dataplane/internal/engine/vllm"
	"github.com/mindrouter/mindrouter/dataplane/internal/enginesim"
	"github.com/mindrouter/mindrouter/dataplane/internal/relay"
)

type harness struct {
	fake  *cpclienttest.Server
	cp    *cpclient.Client
	relay *relay.Relay
}

func newHarness(t testing.TB, backends ...cpclienttest.Backend) *harness {
	t.Helper()
	return newHarnessConfig(t, relay.Config{}, backends...)
}

func newHarnessConfig(t testing.TB, cfg relay.Config, backends ...cpclienttest.Backend) *harness {
	t.Helper()
	fake := cpclienttest.Start(t)
	fake.SetBackends(backends...)
	conn, err := cpclient.Dial(fake.Addr())
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	log := slog.New(slog.DiscardHandler)
	cp, err := cpclient.New(conn, cpclient.Config{ReplicaID: "dp-1", BackoffBase: 5 * time.Millisecond, BackoffMax: 50 * time.Millisecond}, log, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = cp.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	client := engine.NewClient(engine.NewTransport(engine.TransportConfig{ResponseHeaderTimeout: 5 * time.Second}))
	engines := map[relay.Engine]engine.Engine{
		relay.EngineOllama: ollama.New(ollama.Config{Client: client, IdleTimeout: 5 * time.Second}),
		relay.EngineVLLM:   vllm.New(vllm.Config{Client: client, IdleTimeout: 5 * time.Second}),
	}
	r, err := relay.New(cp, engines, cfg, log, prometheus.NewRegistry())
	require.NoError(t, err)
	return &harness{fake: fake, cp: cp, relay: r}
}

// assertOneReleasePerAdmit checks the invariant every test must keep.
func (h *harness) assertOneReleasePerAdmit(t *testing.T) {
	t.Helper()
	h.fake.WaitFor(t, 0, "every lease released", func() bool { return len(h.fake.Unreleased()) == 0 })
	seen := map[string]bool{}
	for _, r := range h.fake.Releases() {
		require.False(t, seen[r.LeaseID], "lease %s released twice", r.LeaseID)
		seen[r.LeaseID] = true
		// Every Release names its lease's identity (for a restarted control plane).
		require.NotEmpty(t, r.RequestID, "release of %s carries the request id", r.LeaseID)
		require.NotZero(t, r.BackendID)
		require.NotZero(t, r.UserID)
		require.NotEmpty(t, r.Model)
	}
}

func simBackend(t testing.TB, id int64, eng enginesim.Engine, script func(enginesim.Request) *enginesim.Reply) (cpclienttest.Backend, *enginesim.Server) {
	t.Helper()
	sim := enginesim.New(enginesim.Config{Engine: eng, Script: script, CompletionTokens: 6})
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	e := relay.EngineOllama
	if eng == enginesim.EngineVLLM {
		e = relay.EngineVLLM
	}
	return cpclienttest.Backend{ID: id, Name: "sim" + string(rune('0'+id)), URL: srv.URL, Engine: e, Model: "sim-llama", ContextLength: 4096}, sim
}

// failingBackend answers every request with status.
func failingBackend(t testing.TB, id int64, status int) cpclienttest.Backend {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, `{"error":"overloaded"}`, status)
	}))
	t.Cleanup(srv.Close)
	return cpclienttest.Backend{ID: id, Name: "failing", URL: srv.URL, Engine: relay.EngineOllama}
}

func deadBackend(t testing.TB, id int64) cpclienttest.Backend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	url := "http://" + ln.Addr().String()
	require.NoError(t, ln.Close())
	return cpclienttest.Backend{ID: id, Name: "dead", URL: url, Engine: relay.EngineVLLM}
}

type sink struct {
	mu       sync.Mutex
	admitted []relay.Admission
	chunks   []canonical.Chunk
	failAt   int // fail on this chunk number (1-based); 0 never
	onChunk  func()
}

func (s *sink) Admitted(a relay.Admission) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.admitted = append(s.admitted, a)
}

func (s *sink) Chunk(c canonical.Chunk) error {
	s.mu.Lock()
	s.chunks = append(s.chunks, c)
	n := len(s.chunks)
	s.mu.Unlock()
	if s.onChunk != nil {
		s.onChunk()
	}
	if s.failAt > 0 && n >= s.failAt {
		return errors.New("broken pipe")
	}
	return nil
}

func (s *sink) response() *canonical.Response {
	var acc canonical.Accumulator
	for _, c := range s.chunks {
		acc.Add(c)
	}
	return acc.Response()
}

func call(stream bool) relay.Call {
	return relay.Call{RequestID: "req-1", Credential: "key", Endpoint: "/v1/chat/completions", Request: &canonical.Request{
		Model: "llama3.2", Stream: stream, Sampling: canonical.Sampling{MaxTokens: 50},
		Messages: []canonical.Message{{Role: canonical.RoleUser, Content: []canonical.Part{canonical.TextPart("Tell me a story.")}}},
	}}
}

func TestStreamSuccessReleasesExactUsage(t *testing.T) {
	t.Parallel()
	for _, eng := range []enginesim.Engine{enginesim.EngineOllama, enginesim.EngineVLLM} {
		t.Run(string(eng), func(t *testing.T) {
			t.Parallel()
			b, sim := simBackend(t, 1, eng, nil)
			h := newHarness(t, b)
			h.fake.SetQueuePosition(3)
			var s sink
			res, err := h.relay.ChatStream(context.Background(), call(true), &s)
			require.NoError(t, err)

			admits := h.fake.Admits()
			require.Len(t, admits, 1)
			a := admits[0]
			require.Equal(t, int32(1), a.Attempt)
			require.Equal(t, "req-1", a.RequestID)
			require.Equal(t, "/v1/chat/completions", a.Endpoint)
			require.True(t, a.Stream)
			require.Equal(t, int64(50), a.MaxOutputTokens)
			require.Positive(t, a.PromptTokensEstimate)
			require.Equal(t, relay.OperationChat, a.Operation)
			require.Equal(t, []relay.Admission{{Attempt: 1, QueuePosition: 3, Backend: "sim1"}}, s.admitted)

			stats := sim.Stats()
			rel := h.fake.WaitReleases(t, 1)
			require.Equal(t, relay.OutcomeSuccess, rel[0].Outcome)
			require.Equal(t, stats.CompletionTokens, rel[0].Usage.Completion)
			require.Equal(t, stats.PromptTokens, rel[0].Usage.Prompt)
			require.False(t, rel[0].Usage.Estimated)
			require.Positive(t, rel[0].Duration)
			require.Equal(t, canonical.Usage{Prompt: stats.PromptTokens, Completion: stats.CompletionTokens}, res.Usage)

			resp := s.response()
			require.NotEmpty(t, resp.Choices[0].Message.Text())
			require.Equal(t, canonical.FinishStop, resp.Choices[0].FinishReason)
			require.Equal(t, &res.Usage, resp.Usage, "the usage chunk reaches the surface")
			h.assertOneReleasePerAdmit(t)
		})
	}
}

func TestRetryBeforeFirstByte(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		first func(t testing.TB) cpclienttest.Backend
	}{
		{"5xx", func(t testing.TB) cpclienttest.Backend { return failingBackend(t, 1, http.StatusServiceUnavailable) }},
		{"connection refused", func(t testing.TB) cpclienttest.Backend { return deadBackend(t, 1) }},
	}
	for _, tc := range tests {
		for _, stream := range []bool{true, false} {
			name := tc.name + map[bool]string{true: " stream", false: " whole"}[stream]
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				good, _ := simBackend(t, 2, enginesim.EngineVLLM, nil)
				h := newHarness(t, tc.first(t), good)
				var s sink
				var err error
				if stream {
					_, err = h.relay.ChatStream(context.Background(), call(true), &s)
				} else {
					var res *relay.Result
					res, err = h.relay.Chat(context.Background(), call(false))
					require.NoError(t, err)
					require.NotEmpty(t, res.Response.Choices[0].Message.Text())
					require.Equal(t, 2, res.Admission.Attempt)
				}
				require.NoError(t, err)
				admits := h.fake.Admits()
				require.Len(t, admits, 2)
				require.Equal(t, int32(2), admits[1].Attempt)
				require.Equal(t, []int64{1}, admits[1].ExcludedBackendIDs)
				require.Equal(t, "req-1", admits[1].RequestID, "the request id is the same across attempts")
				rel := h.fake.WaitReleases(t, 2)
				require.Equal(t, relay.OutcomeBackendError, rel[0].Outcome)
				require.Zero(t, rel[0].Usage.Completion, "a failed attempt charges nothing")
				require.NotEmpty(t, rel[0].Error)
				require.Equal(t, relay.OutcomeSuccess, rel[1].Outcome)
				h.assertOneReleasePerAdmit(t)
			})
		}
	}
}

func TestAllAttemptsFail(t *testing.T) {
	t.Parallel()
	h := newHarness(t, failingBackend(t, 1, 500), deadBackend(t, 2), failingBackend(t, 3, 502), failingBackend(t, 4, 500))
	var s sink
	_, err := h.relay.ChatStream(context.Background(), call(true), &s)
	ce := canonical.AsError(err)
	require.Equal(t, canonical.KindBackend, ce.Kind)
	require.Contains(t, ce.Message, "all 3 backend attempts failed")
	require.Len(t, h.fake.Admits(), 3, "MaxAttempts bounds the tries")
	require.Empty(t, s.chunks)
	for _, r := range h.fake.WaitReleases(t, 3) {
		require.Equal(t, relay.OutcomeBackendError, r.Outcome)
	}
	h.assertOneReleasePerAdmit(t)
}

func TestNoBackendLeftAfterFailure(t *testing.T) {
	t.Parallel()
	h := newHarness(t, failingBackend(t, 1, 500))
	_, err := h.relay.Chat(context.Background(), call(false))
	ce := canonical.AsError(err)
	require.Equal(t, canonical.KindBackend, ce.Kind, "the client hears of the backend failure, not of an empty pool: %v", err)
	require.Len(t, h.fake.Admits(), 2)
	h.assertOneReleasePerAdmit(t)
}

func TestNoRetryAfterFirstByte(t *testing.T) {
	t.Parallel()
	b, _ := simBackend(t, 1, enginesim.EngineOllama, func(enginesim.Request) *enginesim.Reply {
		return &enginesim.Reply{Content: "one two three four five", ErrorMessage: enginesim.DropConnection}
	})
	other, _ := simBackend(t, 2, enginesim.EngineOllama, nil)
	h := newHarness(t, b, other)
	var s sink
	_, err := h.relay.ChatStream(context.Background(), call(true), &s)
	require.True(t, engine.IsRetryable(err), "err: %v", err)
	require.Equal(t, canonical.KindBackend, canonical.AsError(err).Kind)
	require.NotEmpty(t, s.chunks)
	require.Len(t, h.fake.Admits(), 1)
	rel := h.fake.WaitReleases(t, 1)
	require.Equal(t, relay.OutcomeBackendError, rel[0].Outcome)
	require.True(t, rel[0].Usage.Estimated)
	require.Positive(t, rel[0].Usage.Completion, "what was streamed is charged")
	h.assertOneReleasePerAdmit(t)
}

func TestBackendRefusalPassesThrough(t *testing.T) {
	t.Parallel()
	b, _ := simBackend(t, 1, enginesim.EngineVLLM, func(enginesim.Request) *enginesim.Reply {
		return &enginesim.Reply{Status: http.StatusBadRequest, ErrorMessage: "This model's maximum context length is 4096 tokens."}
	})
	other, _ := simBackend(t, 2, enginesim.EngineVLLM, nil)
	h := newHarness(t, b, other)
	for _, stream := range []bool{true, false} {
		var err error
		if stream {
			_, err = h.relay.ChatStream(context.Background(), call(true), &sink{})
		} else {
			_, err = h.relay.Chat(context.Background(), call(false))
		}
		ce := canonical.AsError(err)
		require.Equal(t, http.StatusBadRequest, ce.Status)
		require.Equal(t, "This model's maximum context length is 4096 tokens.", ce.Message)
	}
	require.Len(t, h.fake.Admits(), 2, "refusals are not retried")
	for _, r := range h.fake.WaitReleases(t, 2) {
		require.Equal(t, relay.OutcomeRejected, r.Outcome)
	}
	h.assertOneReleasePerAdmit(t)
}

func TestClientGoesAway(t *testing.T) {
	t.Parallel()
	t.Run("sink fails", func(t *testing.T) {
		t.Parallel()
		b, _ := simBackend(t, 1, enginesim.EngineVLLM, nil)
		h := newHarness(t, b)
		s := &sink{failAt: 2}
		_, err := h.relay.ChatStream(context.Background(), call(true), s)
		require.Error(t, err)
		rel := h.fake.WaitReleases(t, 1)
		require.Equal(t, relay.OutcomeClientCancelled, rel[0].Outcome)
		require.Len(t, h.fake.Admits(), 1)
		h.assertOneReleasePerAdmit(t)
	})
	t.Run("context cancelled mid-stream", func(t *testing.T) {
		t.Parallel()
		sim := enginesim.New(enginesim.Config{Engine: enginesim.EngineOllama, CompletionTokens: 1000, InterTokenDelay: 5 * time.Millisecond})
		srv := httptest.NewServer(sim.Handler())
		t.Cleanup(srv.Close)
		h := newHarness(t, cpclienttest.Backend{ID: 1, URL: srv.URL, Engine: relay.EngineOllama, Model: "sim-llama"})
		ctx, cancel := context.WithCancel(context.Background())
		s := &sink{onChunk: cancel}
		_, err := h.relay.ChatStream(ctx, call(true), s)
		require.Equal(t, canonical.KindCancelled, canonical.AsError(err).Kind)
		rel := h.fake.WaitReleases(t, 1)
		require.Equal(t, relay.OutcomeClientCancelled, rel[0].Outcome)
		require.Eventually(t, func() bool { return sim.Stats().Cancelled == 1 }, 5*time.Second, 10*time.Millisecond,
			"the backend stops generating")
		h.assertOneReleasePerAdmit(t)
	})
	t.Run("while queued", func(t *testing.T) {
		t.Parallel()
		b, _ := simBackend(t, 1, enginesim.EngineVLLM, nil)
		h := newHarness(t, b)
		release := h.fake.HoldAdmits()
		defer release()
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() {
			_, err := h.relay.ChatStream(ctx, call(true), &sink{})
			errc <- err
		}()
		h.fake.WaitFor(t, 0, "queued", func() bool { return len(h.fake.Admits()) == 1 })
		cancel()
		require.Equal(t, canonical.KindCancelled, canonical.AsError(<-errc).Kind)
		h.fake.WaitFor(t, 0, "dequeued", func() bool { return h.fake.CancelledAdmits() == 1 })
		require.Empty(t, h.fake.Releases(), "no lease, no release")
	})
}

func TestControlPlaneRefusesOrIsDown(t *testing.T) {
	t.Parallel()
	b, _ := simBackend(t, 1, enginesim.EngineVLLM, nil)
	h := newHarness(t, b)
	h.fake.SetKeys("good-key")
	_, err := h.relay.Chat(context.Background(), call(false))
	require.Equal(t, canonical.KindAuthentication, canonical.AsError(err).Kind)

	h.fake.Stop()
	_, err = h.relay.ChatStream(context.Background(), call(true), &sink{})
	ce := canonical.AsError(err)
	require.Equal(t, canonical.KindUnavailable, ce.Kind)
	require.Positive(t, ce.RetryAfter())
	require.Empty(t, h.fake.Releases())
}

// TestEstimatedUsage: an engine that reports no usage is charged by estimate,
// marked so, and the stream still ends with a usage chunk.
func TestEstimatedUsage(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/chat/completions" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = w.Write([]byte("data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"abcdefgh\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n"))
	}))
	t.Cleanup(srv.Close)
	h := newHarness(t, cpclienttest.Backend{ID: 1, URL: srv.URL, Engine: relay.EngineVLLM})
	var s sink
	res, err := h.relay.ChatStream(context.Background(), call(true), &s)
	require.NoError(t, err)
	require.True(t, res.Usage.Estimated)
	require.Equal(t, int64(2), res.Usage.Completion, "8 characters are about 2 tokens")
	last := s.chunks[len(s.chunks)-1]
	require.Equal(t, &res.Usage, last.Usage)
	rel := h.fake.WaitReleases(t, 1)
	require.True(t, rel[0].Usage.Estimated)
	require.Equal(t, res.Usage.Prompt, rel[0].Usage.Prompt)
}

func TestSinkPanicStillReleases(t *testing.T) {
	t.Parallel()
	b, _ := simBackend(t, 1, enginesim.EngineVLLM, nil)
	h := newHarness(t, b)
	s := &sink{onChunk: func() { panic("surface bug") }}
	require.Panics(t, func() { _, _ = h.relay.ChatStream(context.Background(), call(true), s) })
	rel := h.fake.WaitReleases(t, 1)
	require.Equal(t, relay.OutcomeBackendError, rel[0].Outcome)
	require.Contains(t, rel[0].Error, "panic")
	h.assertOneReleasePerAdmit(t)
}

func TestNeeds(t *testing.T) {
	t.Parallel()
	req := &canonical.Request{
		Messages: []canonical.Message{{Role: canonical.RoleUser, Content: []canonical.Part{{Type: canonical.PartImage, Image: &canonical.Image{Data: "x"}}}}},
		Tools:    []canonical.Tool{{Name: "f"}}, ResponseFormat: &canonical.ResponseFormat{Type: canonical.FormatJSONObject},
		Think: &canonical.Thinking{Enabled: true},
	}
	require.Equal(t, []relay.Capability{
		relay.CapabilityVision, relay.CapabilityTools,
		relay.CapabilityStructuredOutput, relay.CapabilityThinking,
	}, relay.Needs(req))
	req.ToolChoice = &canonical.ToolChoice{Mode: canonical.ToolChoiceNone}
	req.Think.Enabled = false
	require.False(t, slices.Contains(relay.Needs(req), relay.CapabilityTools))
	require.False(t, slices.Contains(relay.Needs(req), relay.CapabilityThinking))
}

type discard struct{}

func (discard) Admitted(relay.Admission)    {}
func (discard) Chunk(canonical.Chunk) error { return nil }

// BenchmarkRelayRoundTrip measures one streamed request end to end inside the
// process: Admit and Release over gRPC on loopback to the fake control plane,
// and a 16-token stream from the simulated vLLM over HTTP on loopback.
func BenchmarkRelayRoundTrip(b *testing.B) {
	sim := enginesim.New(enginesim.Config{Engine: enginesim.EngineVLLM, CompletionTokens: 16})
	srv := httptest.NewServer(sim.Handler())
	b.Cleanup(srv.Close)
	h := newHarness(b, cpclienttest.Backend{ID: 1, URL: srv.URL, Engine: relay.EngineVLLM, Model: "sim-llama"})
	c := call(true)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.relay.ChatStream(context.Background(), c, discard{}); err != nil {
			b.Fatal(err)
		}
	}
}
