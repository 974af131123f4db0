package e2e

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"

	"github.com/mindrouter/mindrouter/dataplane/e2e/internal/cluster"
	"github.com/mindrouter/mindrouter/dataplane/e2e/internal/ollamatest"
	"github.com/mindrouter/mindrouter/dataplane/internal/enginesim"
)

// startSim runs an in-process engine simulator for the test's lifetime.
func startSim(t testing.TB, cfg enginesim.Config) (*enginesim.Server, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	srv, url, err := enginesim.Listen(ctx, "127.0.0.1:0", cfg)
	require.NoError(t, err)
	t.Cleanup(func() { cancel(); <-srv.Done() })
	return srv, url
}

func openaiClient(c *cluster.Cluster, key string) openai.Client {
	return openai.NewClient(option.WithBaseURL(c.DataPlaneURL+"/v1/"), option.WithAPIKey(key), option.WithMaxRetries(0))
}

type backendJSON struct {
	ID                string   `json:"id"`
	Name              string   `json:"name"`
	Status            string   `json:"status"`
	Engine            string   `json:"engine"`
	CurrentConcurrent int      `json:"current_concurrent"`
	Simulated         bool     `json:"simulated"`
	Models            []string `json:"models"`
}

// TestChatThroughBothEngines drives the OpenAI Go SDK through the data plane and the
// control plane to an Ollama-dialect and a vLLM-dialect backend, streamed and not.
func TestChatThroughBothEngines(t *testing.T) {
	t.Parallel()
	_, ollamaURL := startSim(t, enginesim.Config{Engine: enginesim.EngineOllama, Models: []enginesim.ModelSpec{{Name: "sim-ollama", ContextLength: 4096}}, CompletionTokens: 12})
	_, vllmURL := startSim(t, enginesim.Config{Engine: enginesim.EngineVLLM, Models: []enginesim.ModelSpec{{Name: "sim-vllm", ContextLength: 4096}}, CompletionTokens: 12})
	c := cluster.Start(t, cluster.Options{Backends: []cluster.Backend{
		{Name: "ollama-sim", Engine: "ollama", URL: ollamaURL},
		{Name: "vllm-sim", Engine: "vllm", URL: vllmURL},
	}})
	client := openaiClient(c, c.AdminKey)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	models, err := client.Models.List(ctx)
	require.NoError(t, err, c.Logs())
	var ids []string
	for _, m := range models.Data {
		ids = append(ids, m.ID)
		require.Contains(t, m.RawJSON(), `"simulated":true`, "simulator-backed models are labelled")
	}
	require.ElementsMatch(t, []string{"sim-ollama", "sim-vllm"}, stripLatest(ids))

	for _, model := range []string{"sim-ollama", "sim-vllm"} {
		t.Run(model+"/non-streamed", func(t *testing.T) {
			resp, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
				Model:     model,
				Messages:  []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("be brief"), openai.UserMessage("hello")},
				MaxTokens: openai.Int(5),
			})
			require.NoError(t, err, c.Logs())
			require.Len(t, resp.Choices, 1)
			require.Equal(t, "length", resp.Choices[0].FinishReason)
			require.NotEmpty(t, resp.Choices[0].Message.Content)
			require.EqualValues(t, 5, resp.Usage.CompletionTokens, "the engine's exact count")
			require.Positive(t, resp.Usage.PromptTokens)
		})
		t.Run(model+"/streamed", func(t *testing.T) {
			stream := client.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{
				Model:         model,
				Messages:      []openai.ChatCompletionMessageParamUnion{openai.UserMessage("count")},
				StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
			})
			var text strings.Builder
			var finish string
			var usage openai.CompletionUsage
			for stream.Next() {
				chunk := stream.Current()
				for _, ch := range chunk.Choices {
					text.WriteString(ch.Delta.Content)
					if ch.FinishReason != "" {
						finish = ch.FinishReason
					}
				}
				if chunk.Usage.TotalTokens > 0 {
					usage = chunk.Usage
				}
			}
			require.NoError(t, stream.Err(), c.Logs())
			require.Equal(t, "stop", finish)
			require.Equal(t, enginesim.DefaultText(12), text.String(), "every token arrives, in order")
			require.EqualValues(t, 12, usage.CompletionTokens)
		})
	}

	// The releases rode the replica's session stream, not unary calls.
	mreq, err := http.NewRequestWithContext(ctx, http.MethodGet, c.DataPlaneURL+"/metrics", nil)
	require.NoError(t, err)
	mresp, err := http.DefaultClient.Do(mreq)
	require.NoError(t, err)
	metrics, err := io.ReadAll(mresp.Body)
	_ = mresp.Body.Close()
	require.NoError(t, err)
	require.Regexp(t, `mindrouter_dp_cp_releases_total\{result="ok"\} [1-9]`, string(metrics))
	require.Regexp(t, `mindrouter_dp_cp_release_batches_total [1-9]`, string(metrics))

	// Every lease was released: nothing is left in flight.
	var backends []backendJSON
	status, err := c.AdminJSON(ctx, c.RESTURL, http.MethodGet, "/api/admin/backends", nil, &backends)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)
	for _, b := range backends {
		require.Zero(t, b.CurrentConcurrent, b.Name)
	}
}

// TestAdminAPIOnBothPorts checks the original README's admin curl calls against the
// control plane's REST port and the data plane's port, and gRPC reflection.
func TestAdminAPIOnBothPorts(t *testing.T) {
	t.Parallel()
	_, simURL := startSim(t, enginesim.Config{Engine: enginesim.EngineOllama})
	c := cluster.Start(t, cluster.Options{Backends: []cluster.Backend{{Name: "sim", Engine: "ollama", URL: simURL}}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var viaCP, viaDP []backendJSON
	status, err := c.AdminJSON(ctx, c.RESTURL, http.MethodGet, "/api/admin/backends", nil, &viaCP)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)
	status, err = c.AdminJSON(ctx, c.DataPlaneURL, http.MethodGet, "/api/admin/backends", nil, &viaDP)
	require.NoError(t, err, c.Logs())
	require.Equal(t, http.StatusOK, status)
	require.Len(t, viaCP, 1)
	require.Equal(t, viaCP[0].Name, viaDP[0].Name)
	require.Equal(t, "healthy", viaCP[0].Status)
	require.True(t, viaCP[0].Simulated)

	// Registering a second backend through the data plane's port reaches the control plane.
	_, vllmURL := startSim(t, enginesim.Config{Engine: enginesim.EngineVLLM})
	var reg struct {
		Backend backendJSON `json:"backend"`
		Created bool        `json:"created"`
	}
	status, err = c.AdminJSON(ctx, c.DataPlaneURL, http.MethodPost, "/api/admin/backends/register",
		map[string]any{"name": "vllm-1", "url": vllmURL, "engine": "vllm", "max_concurrent": 2}, &reg)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)
	require.True(t, reg.Created)
	require.Equal(t, "healthy", reg.Backend.Status)

	// The scheduler's queue view answers on both ports.
	for _, base := range []string{c.RESTURL, c.DataPlaneURL} {
		var queue struct {
			Backends []map[string]any `json:"backends"`
		}
		status, err := c.AdminJSON(ctx, base, http.MethodGet, "/api/admin/queue", nil, &queue)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, status, base)
	}

	// No key: refused on both ports, in the same shape.
	for _, base := range []string{c.RESTURL, c.DataPlaneURL} {
		resp, err := http.Get(base + "/api/admin/backends")
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode, base)
	}

	// grpcurl -plaintext <cp> list
	conn, err := grpc.NewClient(c.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	rs, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	require.NoError(t, err)
	require.NoError(t, rs.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}))
	resp, err := rs.Recv()
	require.NoError(t, err)
	var services []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		services = append(services, s.GetName())
	}
	require.Subset(t, services, []string{
		"mindrouter.controlplane.v1.AdmissionService", "mindrouter.controlplane.v1.SessionService",
		"mindrouter.admin.v1.RegistryService", "mindrouter.admin.v1.IdentityService",
		"mindrouter.nodeagent.v1.TelemetryService", "grpc.health.v1.Health",
	})
}

// TestDataPlaneKilledMidStreamFreesLease kills the data plane while it streams and
// checks that the control plane frees the lease once the replica's session is gone.
func TestDataPlaneKilledMidStreamFreesLease(t *testing.T) {
	t.Parallel()
	_, simURL := startSim(t, enginesim.Config{Engine: enginesim.EngineOllama, CompletionTokens: 400, InterTokenDelay: 50 * time.Millisecond})
	c := cluster.Start(t, cluster.Options{
		Backends:         []cluster.Backend{{Name: "slow", Engine: "ollama", URL: simURL}},
		ControlPlaneArgs: []string{"-session-grace", "1s", "-lease-ttl", "5s", "-heartbeat-interval", "1s"},
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.DataPlaneURL+"/v1/chat/completions",
		strings.NewReader(`{"model":"sim-llama","stream":true,"max_tokens":1000,"messages":[{"role":"user","content":"go on"}]}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+c.AdminKey)
	started := time.Now()
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err, c.Logs())
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(line, "data: "), line)

	inFlight := func() int {
		var backends []backendJSON
		_, err := c.AdminJSON(ctx, c.RESTURL, http.MethodGet, "/api/admin/backends", nil, &backends)
		require.NoError(t, err)
		require.Len(t, backends, 1)
		return backends[0].CurrentConcurrent
	}
	require.Equal(t, 1, inFlight(), "the stream holds a lease")
	time.Sleep(1500 * time.Millisecond) // a heartbeat or two report the stream's progress
	c.KillDataPlane()
	killed := time.Now()
	require.Eventually(t, func() bool { return inFlight() == 0 }, 20*time.Second, 50*time.Millisecond,
		"the control plane frees the dead replica's lease\n%s", c.Logs())
	t.Logf("lease freed %v after the kill (session grace 1s)", time.Since(killed).Round(time.Millisecond))

	// The lost lease is charged what the last heartbeat reported: the prompt and
	// the tokens generated until then at 50 ms a token (~30 on an idle machine,
	// more when a busy one is slow to get to the kill), never the reservation
	// of the prompt plus 1,000 output tokens.
	used := adminUsed(ctx, t, c)
	generated := int64(killed.Sub(started) / (50 * time.Millisecond))
	t.Logf("charged %d tokens for a lease reserving over 1000 (at most %d generated before the kill)", used, generated)
	require.Positive(t, used)
	require.Less(t, used, int64(1000), "charged the reported progress, not the reservation")

	// A new replica serves again.
	c.StartDataPlane()
	client := openaiClient(c, c.AdminKey)
	_, err = client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model: "sim-llama", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}, MaxTokens: openai.Int(3),
	})
	require.NoError(t, err, c.Logs())
}

// TestRealOllama sends the OpenAI SDK through the gateway to a real CPU Ollama built
// from the Go module proxy, serving a tiny generated model. It never skips silently:
// without the binary it fails (MINDROUTER_SKIP_OLLAMA=1 skips loudly).
func TestRealOllama(t *testing.T) {
	t.Parallel()
	ol := ollamatest.Shared(t)
	c := cluster.Start(t, cluster.Options{Backends: []cluster.Backend{{Name: "ollama", Engine: "ollama", URL: ol.URL}}})
	client := openaiClient(c, c.AdminKey)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	models, err := client.Models.List(ctx)
	require.NoError(t, err, c.Logs())
	require.Len(t, models.Data, 1)
	model := models.Data[0].ID
	require.Contains(t, []string{"tiny", "tiny:latest"}, model)
	require.NotContains(t, models.Data[0].RawJSON(), `"simulated":true`, "a real Ollama is not labelled simulated")

	resp, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model: model, Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hello")},
		MaxTokens: openai.Int(8), Temperature: openai.Float(0), Seed: openai.Int(1),
	})
	require.NoError(t, err, c.Logs())
	require.Equal(t, "length", resp.Choices[0].FinishReason)
	require.EqualValues(t, 8, resp.Usage.CompletionTokens, "Ollama's eval_count, passed through")
	require.Positive(t, resp.Usage.PromptTokens)

	stream := client.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{
		Model: model, Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hello")},
		MaxTokens: openai.Int(8), Temperature: openai.Float(0), Seed: openai.Int(1),
		StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
	})
	var text strings.Builder
	var finish string
	var usage openai.CompletionUsage
	for stream.Next() {
		chunk := stream.Current()
		for _, ch := range chunk.Choices {
			text.WriteString(ch.Delta.Content)
			if ch.FinishReason != "" {
				finish = ch.FinishReason
			}
		}
		if chunk.Usage.TotalTokens > 0 {
			usage = chunk.Usage
		}
	}
	require.NoError(t, stream.Err(), c.Logs())
	require.Equal(t, "length", finish)
	require.EqualValues(t, 8, usage.CompletionTokens)
	require.Equal(t, resp.Choices[0].Message.Content, text.String(), "seeded greedy decoding repeats, streamed or not")
}

func stripLatest(ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = strings.TrimSuffix(id, ":latest")
	}
	return out
}
