package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go"
	"github.com/ollama/ollama/api"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/e2e/internal/cluster"
	"github.com/mindrouter/mindrouter/dataplane/internal/enginesim"
)

// scrapeTarget is one process's /metrics, named as in docs/observability.md.
type scrapeTarget struct {
	process string // the catalogue's process key
	url     string // base URL; /metrics is appended
}

// TestObservability runs one cluster of every process (control plane, data
// plane, node agent, a vLLM-dialect engine simulator) with OTLP trace export to
// a real OTLP/gRPC receiver, sends real traffic through every surface, and then
// checks what an operator relies on: every metric the catalogue lists is there
// and moved, nothing unlisted is exported, promtool accepts every scrape, a real
// Prometheus server scrapes them all, and a request is one trace across both
// planes and the backend call.
func TestObservability(t *testing.T) {
	t.Parallel()
	receiver := startOTLPReceiver(t)
	_, ollamaURL := startSim(t, enginesim.Config{Engine: enginesim.EngineOllama, Models: []enginesim.ModelSpec{
		{Name: "obs-ollama", ContextLength: 4096}, {Name: "obs-embed", ContextLength: 512, Capabilities: []string{"embedding"}},
	}, CompletionTokens: 8})
	_, vllmURL := startSim(t, enginesim.Config{Engine: enginesim.EngineVLLM, Models: []enginesim.ModelSpec{{Name: "obs-vllm", ContextLength: 4096}}, CompletionTokens: 8})
	c := cluster.Start(t, cluster.Options{
		Backends: []cluster.Backend{
			{Name: "ollama-sim", Engine: "ollama", URL: ollamaURL},
			{Name: "vllm-sim", Engine: "vllm", URL: vllmURL},
		},
		ControlPlaneArgs: []string{"-telemetry-interval", "1s"},
		Env: []string{
			"OTEL_EXPORTER_OTLP_ENDPOINT=http://" + receiver.addr, "OTEL_EXPORTER_OTLP_PROTOCOL=grpc",
			"OTEL_BSP_SCHEDULE_DELAY=100", "OTEL_TRACES_SAMPLER=always_on",
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	const node, nodeSecret = "obs-node", "obs-node-secret-0123456789abcdef"
	code, err := c.AdminJSON(ctx, c.RESTURL, http.MethodPost, "/api/admin/nodes/register",
		map[string]any{"name": node, "hostname": "obs-host", "agent_secret": nodeSecret}, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	agent := c.StartNodeAgent(node, nodeSecret)

	traceID := sendObservedTraffic(ctx, t, c)

	// The node agent has sent samples and the control plane has stored them.
	require.Eventually(t, func() bool {
		return strings.Contains(scrape(t, agent.MetricsURL), "mindrouter_agent_samples_sent_total")
	}, 30*time.Second, 200*time.Millisecond, agent.Log())

	// Audit records travel after the client is answered, in batches: wait
	// until the traffic's records are acknowledged and stored before the
	// catalogue reads their counters.
	require.Eventually(t, func() bool {
		return familyMoved(t, c.DataPlaneURL, "dataplane", "mindrouter_dp_audit_records_shipped_total") &&
			familyMoved(t, c.RESTURL, "controlplane", "mindrouter_cp_audit_records_stored_total")
	}, 30*time.Second, 200*time.Millisecond, c.Logs())

	targets := []scrapeTarget{
		{"controlplane", c.RESTURL},
		{"dataplane", c.DataPlaneURL},
		{"nodeagent", agent.MetricsURL},
		{"enginesim-vllm", vllmURL},
	}
	t.Run("catalogue", func(t *testing.T) { checkCatalogue(t, targets) })
	t.Run("promtool", func(t *testing.T) { checkPromtool(t, targets) })
	t.Run("prometheus", func(t *testing.T) { checkPrometheusServer(ctx, t, targets) })
	t.Run("trace", func(t *testing.T) { checkTrace(t, receiver, traceID, vllmURL) })
}

// sendObservedTraffic sends, through the official SDKs, OpenAI, Ollama and
// Anthropic requests, streamed and not, an embedding and two failures, and
// returns the trace id that the traced OpenAI request carried in.
func sendObservedTraffic(ctx context.Context, t *testing.T, c *cluster.Cluster) string {
	t.Helper()
	oa := openaiClient(c, c.AdminKey)

	// The traced request: a client span of our own, as an instrumented caller
	// would send it.
	traceID, parentSpan := "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	resp, err := oa.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model: "obs-vllm", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hello")}, MaxTokens: openai.Int(4),
	}, option.WithHeader("traceparent", fmt.Sprintf("00-%s-%s-01", traceID, parentSpan)))
	require.NoError(t, err, c.Logs())
	require.Len(t, resp.Choices, 1)

	stream := oa.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{
		Model: "obs-ollama", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("count")},
		StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
	})
	chunks := 0
	for stream.Next() {
		chunks++
	}
	require.NoError(t, stream.Err(), c.Logs())
	require.Positive(t, chunks)

	emb, err := oa.Embeddings.New(ctx, openai.EmbeddingNewParams{
		Model: "obs-embed", Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("vector")},
	})
	require.NoError(t, err, c.Logs())
	require.Len(t, emb.Data, 1)

	// An error in the client's own dialect: an unknown model.
	_, err = oa.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model: "no-such-model", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
	})
	var apiErr *openai.Error
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, http.StatusNotFound, apiErr.StatusCode)
	// And a refused credential.
	stranger := openaiClient(c, cluster.NewKey(t))
	_, err = stranger.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model: "obs-vllm", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
	})
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, http.StatusUnauthorized, apiErr.StatusCode)

	ol := ollamaClient(t, c, c.AdminKey)
	for _, streamed := range []*bool{streamOff, streamOn} {
		out, n, err := chat(ctx, ol, &api.ChatRequest{Model: "obs-ollama", Stream: streamed,
			Messages: []api.Message{{Role: "user", Content: "hi"}}})
		require.NoError(t, err, c.Logs())
		require.True(t, out.Done)
		require.Positive(t, n)
	}
	gen, _, err := generate(ctx, ol, &api.GenerateRequest{Model: "obs-vllm", Prompt: "once", Stream: streamOff})
	require.NoError(t, err, c.Logs())
	require.True(t, gen.Done)

	an := anthropicClient(c, c.AdminKey, false)
	params := anthropic.MessageNewParams{Model: "obs-vllm", MaxTokens: 16,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))}}
	msg, err := an.Messages.New(ctx, params)
	require.NoError(t, err, c.Logs())
	require.NotEmpty(t, msg.Content)
	params.Model = "obs-ollama"
	streamed := streamMessage(ctx, t, c, an, params)
	require.NotEmpty(t, streamed.Content)
	return traceID
}

// scrape returns a /metrics page.
func scrape(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s/metrics: %s", base, body)
	return string(body)
}
