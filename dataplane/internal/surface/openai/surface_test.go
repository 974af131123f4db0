package openai_test

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/cpclient"
	"github.com/mindrouter/mindrouter/dataplane/internal/cpclient/cpclienttest"
	"github.com/mindrouter/mindrouter/dataplane/internal/engine"
	"github.com/mindrouter/mindrouter/dataplane/internal/engine/ollama"
	"github.com/mindrouter/mindrouter/dataplane/internal/engine/vllm"
	"github.com/mindrouter/mindrouter/dataplane/internal/enginesim"
	"github.com/mindrouter/mindrouter/dataplane/internal/relay"
	"github.com/mindrouter/mindrouter/dataplane/internal/server"
	"github.com/mindrouter/mindrouter/dataplane/internal/stream"
	surface "github.com/mindrouter/mindrouter/dataplane/internal/surface/openai"
)

// gateway is a data plane in the test process: fake control plane over gRPC,
// real relay and engines, the OpenAI surface behind the real server.
type gateway struct {
	fake *cpclienttest.Server
	url  string
}

func newGateway(t *testing.T, backends ...cpclienttest.Backend) *gateway {
	t.Helper()
	fake := cpclienttest.Start(t)
	fake.SetBackends(backends...)
	conn, err := cpclient.Dial(fake.Addr())
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	log := slog.New(slog.DiscardHandler)
	cp, err := cpclient.New(conn, cpclient.Config{ReplicaID: "dp"}, log, nil)
	require.NoError(t, err)
	client := engine.NewClient(engine.NewTransport(engine.TransportConfig{}))
	r, err := relay.New(cp, map[relay.Engine]engine.Engine{
		relay.EngineOllama: ollama.New(ollama.Config{Client: client}),
		relay.EngineVLLM:   vllm.New(vllm.Config{Client: client}),
	}, relay.Config{}, log, nil)
	require.NoError(t, err)
	srv, err := server.New(server.Options{
		Surfaces: []server.Surface{surface.New(r, cp, surface.Config{Now: func() time.Time { return time.Unix(1700000000, 0) }}, log)},
		Log:      log,
	})
	require.NoError(t, err)
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return &gateway{fake: fake, url: hs.URL}
}

func sim(t *testing.T, id int64, eng enginesim.Engine, script func(enginesim.Request) *enginesim.Reply) cpclienttest.Backend {
	t.Helper()
	s := enginesim.New(enginesim.Config{Engine: eng, Script: script, CompletionTokens: 5})
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	e := relay.EngineOllama
	if eng == enginesim.EngineVLLM {
		e = relay.EngineVLLM
	}
	return cpclienttest.Backend{ID: id, Name: string(eng), URL: hs.URL, Engine: e, Model: "sim-llama", Simulated: true}
}

func (g *gateway) post(t *testing.T, body string, header ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, g.url+"/v1/chat/completions", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer mr2_key")
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] == "" {
			req.Header.Del(header[i])
			continue
		}
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { _ = resp.Body.Close() })
	return resp
}

type apiError struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	} `json:"error"`
}

func decodeError(t *testing.T, resp *http.Response) apiError {
	t.Helper()
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	var e apiError
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&e))
	require.NotEmpty(t, e.Error.Message)
	require.NotEmpty(t, e.Error.Type)
	return e
}

const hello = `{"model":"llama3.2","messages":[{"role":"user","content":"hello"}]`

func TestChatCompletion(t *testing.T) {
	t.Parallel()
	g := newGateway(t, sim(t, 1, enginesim.EngineVLLM, nil))
	g.fake.SetQueuePosition(4)
	resp := g.post(t, hello+`}`, "X-Request-ID", "client-id-1")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "client-id-1", resp.Header.Get("X-Request-ID"))
	require.Equal(t, "4", resp.Header.Get(surface.QueuePositionHeader))
	require.Equal(t, "true", resp.Header.Get(surface.SimulatedHeader))
	var out struct {
		ID      string `json:"id"`
		Object  string `json:"object"`
		Created int64  `json:"created"`
		Model   string `json:"model"`
		Choices []struct {
			Message struct {
				Role    string  `json:"role"`
				Content *string `json:"content"`
			} `json:"message"`
			FinishReason string `json:"finish_reason"`
		} `json:"choices"`
		Usage struct {
			PromptTokens, CompletionTokens, TotalTokens int64
		} `json:"usage"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	require.True(t, strings.HasPrefix(out.ID, "chatcmpl-"))
	require.Equal(t, "chat.completion", out.Object)
	require.Equal(t, int64(1700000000), out.Created)
	require.Equal(t, "llama3.2", out.Model, "clients see the name they asked for")
	require.Equal(t, "assistant", out.Choices[0].Message.Role)
	require.NotEmpty(t, *out.Choices[0].Message.Content)
	require.Equal(t, "stop", out.Choices[0].FinishReason)
	admitted := g.fake.Admits()[0].RequestID
	require.NotEqual(t, "client-id-1", admitted, "clients never choose the id usage is keyed by")
	require.Equal(t, "chatcmpl-"+admitted, out.ID, "the answer id names the request in the control plane")
	require.Equal(t, "mr2_key", g.fake.Admits()[0].Credential)
}

type event struct {
	data string
	obj  map[string]any
}

func readStream(t *testing.T, resp *http.Response) []event {
	t.Helper()
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	r := stream.NewSSEReader(resp.Body, 0)
	var out []event
	for {
		ev, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		e := event{data: string(ev.Data)}
		if e.data != "[DONE]" {
			require.NoError(t, json.Unmarshal(ev.Data, &e.obj), "event %s", ev.Data)
		}
		out = append(out, e)
	}
}

// TestStreamedToolCalls: Ollama's whole calls and vLLM's fragments both reach
// OpenAI clients as well-formed deltas.
func TestStreamedToolCalls(t *testing.T) {
	t.Parallel()
	script := func(enginesim.Request) *enginesim.Reply {
		return &enginesim.Reply{ToolCalls: []enginesim.ToolCall{
			{Name: "get_weather", Arguments: `{"city":"Tokyo"}`}, {Name: "get_weather", Arguments: `{"city":"Paris"}`},
		}}
	}
	for _, eng := range []enginesim.Engine{enginesim.EngineOllama, enginesim.EngineVLLM} {
		for _, includeUsage := range []bool{false, true} {
			name := string(eng) + map[bool]string{true: " with usage", false: ""}[includeUsage]
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				g := newGateway(t, sim(t, 1, eng, script))
				body := `{"model":"llama3.2","stream":true,"messages":[{"role":"user","content":"weather?"}],` +
					`"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}]`
				if includeUsage {
					body += `,"stream_options":{"include_usage":true}`
				}
				resp := g.post(t, body+`}`)
				require.Equal(t, http.StatusOK, resp.StatusCode)
				events := readStream(t, resp)
				require.Equal(t, "[DONE]", events[len(events)-1].data)

				var acc canonical.Accumulator
				ids := map[float64]string{}
				sawUsage := false
				for i, ev := range events[:len(events)-1] {
					if u, ok := ev.obj["usage"]; ok && u != nil {
						sawUsage = true
						require.Empty(t, ev.obj["choices"])
						continue
					}
					ch := ev.obj["choices"].([]any)[0].(map[string]any)
					delta := ch["delta"].(map[string]any)
					if i == 0 {
						require.Equal(t, "assistant", delta["role"])
					}
					for _, raw := range asSlice(delta["tool_calls"]) {
						tc := raw.(map[string]any)
						idx := tc["index"].(float64)
						fn := tc["function"].(map[string]any)
						if id, ok := tc["id"]; ok {
							require.NotContains(t, ids, idx, "id repeated")
							ids[idx] = id.(string)
							require.Equal(t, "function", tc["type"])
						}
						d := canonical.ToolCallDelta{Index: int(idx), ID: str(tc["id"]), Name: str(fn["name"]), Arguments: str(fn["arguments"])}
						acc.Add(canonical.Chunk{ToolCalls: []canonical.ToolCallDelta{d}})
					}
					if f, ok := ch["finish_reason"].(string); ok {
						acc.Add(canonical.Chunk{FinishReason: canonical.FinishReason(f)})
					}
				}
				require.Equal(t, includeUsage, sawUsage)
				got := acc.Response().Choices[0]
				require.Equal(t, canonical.FinishToolCalls, got.FinishReason)
				require.Len(t, got.Message.ToolCalls, 2)
				require.JSONEq(t, `{"city":"Tokyo"}`, got.Message.ToolCalls[0].Arguments)
				require.JSONEq(t, `{"city":"Paris"}`, got.Message.ToolCalls[1].Arguments)
				require.NotEqual(t, ids[0], ids[1])
			})
		}
	}
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func TestMidStreamFailureEndsWithErrorEvent(t *testing.T) {
	t.Parallel()
	g := newGateway(t, sim(t, 1, enginesim.EngineVLLM, func(enginesim.Request) *enginesim.Reply {
		return &enginesim.Reply{Content: "a b c d e f", ErrorMessage: enginesim.DropConnection}
	}), sim(t, 2, enginesim.EngineVLLM, nil))
	resp := g.post(t, `{"model":"llama3.2","stream":true,"messages":[{"role":"user","content":"x"}]}`)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	events := readStream(t, resp)
	last := events[len(events)-1]
	require.NotEqual(t, "[DONE]", last.data, "a failed stream does not claim success")
	errObj := last.obj["error"].(map[string]any)
	require.Equal(t, "server_error", errObj["type"])
	require.Equal(t, "backend_error", errObj["code"])
	require.Len(t, g.fake.Admits(), 1, "no retry after the first byte")
}

func TestRefusals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		err        error
		status     int
		typ, code  string
		retryAfter string
	}{
		{"invalid key", cpclienttest.Refusal(codes.Unauthenticated, relay.ReasonInvalidCredential, "Invalid API key", 0),
			401, "authentication_error", "invalid_api_key", ""},
		{"forbidden", cpclienttest.Refusal(codes.PermissionDenied, relay.ReasonPermissionDenied, "no", 0),
			403, "permission_error", "permission_denied", ""},
		{"unknown model", cpclienttest.Refusal(codes.NotFound, relay.ReasonModelNotFound, "The model `x` does not exist", 0),
			404, "invalid_request_error", "model_not_found", ""},
		{"context", cpclienttest.Refusal(codes.InvalidArgument, relay.ReasonContextExceeded, "too long", 0),
			400, "invalid_request_error", "context_length_exceeded", ""},
		{"rpm", cpclienttest.Refusal(codes.ResourceExhausted, relay.ReasonRateLimited, "Rate limit exceeded", 1500*time.Millisecond),
			429, "requests", "rate_limit_exceeded", "2"},
		{"quota", cpclienttest.Refusal(codes.ResourceExhausted, relay.ReasonQuotaExhausted, "Token quota exceeded", time.Hour),
			429, "insufficient_quota", "insufficient_quota", "3600"},
		{"queue full", cpclienttest.Refusal(codes.ResourceExhausted, relay.ReasonQueueFull, "queue full", 0),
			503, "server_error", "queue_full", "1"},
		{"queue timeout", cpclienttest.Refusal(codes.Unavailable, relay.ReasonQueueTimeout, "waited", 10*time.Second),
			503, "server_error", "queue_timeout", "10"},
		{"database", cpclienttest.Refusal(codes.Unavailable, relay.ReasonDatabaseUnavailable, "the gateway's database is unavailable; retry shortly", 5*time.Second),
			503, "server_error", "database_unavailable", "5"},
	}
	g := newGateway(t, sim(t, 1, enginesim.EngineVLLM, nil))
	for _, tc := range tests {
		for _, stream := range []string{"false", "true"} {
			t.Run(tc.name+" stream="+stream, func(t *testing.T) {
				g.fake.FailAdmits(tc.err)
				resp := g.post(t, `{"model":"x","stream":`+stream+`,"messages":[{"role":"user","content":"x"}]}`)
				require.Equal(t, tc.status, resp.StatusCode)
				require.Equal(t, tc.retryAfter, resp.Header.Get("Retry-After"))
				e := decodeError(t, resp)
				require.Equal(t, tc.typ, e.Error.Type)
				require.Equal(t, tc.code, *e.Error.Code)
			})
		}
	}
}

func TestFailuresWithoutTheClientsFault(t *testing.T) {
	t.Parallel()
	t.Run("backend refusal passes through", func(t *testing.T) {
		t.Parallel()
		g := newGateway(t, sim(t, 1, enginesim.EngineVLLM, func(enginesim.Request) *enginesim.Reply {
			return &enginesim.Reply{Status: 400, ErrorMessage: "max_tokens is too large"}
		}))
		resp := g.post(t, hello+`}`)
		require.Equal(t, http.StatusBadRequest, resp.StatusCode)
		require.Equal(t, "max_tokens is too large", decodeError(t, resp).Error.Message)
	})
	t.Run("all backends failing is 502", func(t *testing.T) {
		t.Parallel()
		down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) }))
		t.Cleanup(down.Close)
		g := newGateway(t, cpclienttest.Backend{ID: 1, URL: down.URL, Engine: relay.EngineVLLM})
		resp := g.post(t, hello+`,"stream":true}`)
		require.Equal(t, http.StatusBadGateway, resp.StatusCode)
		require.Equal(t, "backend_error", *decodeError(t, resp).Error.Code)
	})
	t.Run("control plane down is 503 with Retry-After", func(t *testing.T) {
		t.Parallel()
		g := newGateway(t)
		g.fake.Stop()
		resp := g.post(t, hello+`}`)
		require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
		require.Equal(t, "2", resp.Header.Get("Retry-After"))
		require.Equal(t, "control_plane_unavailable", *decodeError(t, resp).Error.Code)
	})
}

func TestBadInputNeverReachesTheControlPlane(t *testing.T) {
	t.Parallel()
	g := newGateway(t, sim(t, 1, enginesim.EngineVLLM, nil))
	tests := []struct {
		name, body string
		header     []string
		status     int
		code       string
	}{
		{"no key", hello + `}`, []string{"Authorization", ""}, 401, "missing_api_key"},
		{"empty bearer", hello + `}`, []string{"Authorization", "Bearer "}, 401, "missing_api_key"},
		{"bad JSON", `{"model":`, nil, 400, ""},
		{"bad role", `{"model":"m","messages":[{"role":"x","content":"y"}]}`, nil, 400, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := g.post(t, tc.body, tc.header...)
			require.Equal(t, tc.status, resp.StatusCode)
			e := decodeError(t, resp)
			if tc.code != "" {
				require.Equal(t, tc.code, *e.Error.Code)
			}
		})
	}
	require.Empty(t, g.fake.Admits())

	resp := g.post(t, hello+`}`, "Authorization", "", "X-API-Key", "mr2_other")
	require.Equal(t, http.StatusOK, resp.StatusCode, "X-API-Key is accepted too")
	require.Equal(t, "mr2_other", g.fake.Admits()[0].Credential)
}

func TestModels(t *testing.T) {
	t.Parallel()
	g := newGateway(t)
	g.fake.SetModels(
		relay.ModelInfo{Name: "sim-llama", Created: 5, ContextLength: 8192, Simulated: true,
			Capabilities: []relay.Capability{relay.CapabilityTools}},
		relay.ModelInfo{Name: "llama3.2", Created: 7, ContextLength: 131072, Family: "llama",
			Capabilities: []relay.Capability{relay.CapabilityVision, relay.CapabilityThinking}},
	)
	req, err := http.NewRequest(http.MethodGet, g.url+"/v1/models", nil)
	require.NoError(t, err)
	req.Header.Set("X-API-Key", "mr2_key")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.JSONEq(t, `{"object":"list","data":[
		{"id":"llama3.2","object":"model","created":7,"owned_by":"mindrouter","context_length":131072,"model_max_context":131072,
		 "family":"llama","capabilities":{"multimodal":true,"embeddings":false,"structured_output":false,"thinking":true,"tools":false}},
		{"id":"sim-llama","object":"model","created":5,"owned_by":"mindrouter","context_length":8192,"model_max_context":8192,
		 "simulated":true,"capabilities":{"multimodal":false,"embeddings":false,"structured_output":false,"thinking":false,"tools":true}}]}`, string(b))

	resp2, err := http.Get(g.url + "/v1/models")
	require.NoError(t, err)
	defer resp2.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp2.StatusCode)
	require.Equal(t, 1, g.fake.ListModelsCalls())
}

func TestCredential(t *testing.T) {
	t.Parallel()
	tests := []struct{ auth, apiKey, want string }{
		{"Bearer abc", "", "abc"},
		{"bearer  abc ", "", "abc"},
		{"Basic abc", "", ""},
		{"", "xyz", "xyz"},
		{"Bearer abc", "xyz", "abc"},
	}
	for _, tc := range tests {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Authorization", tc.auth)
		r.Header.Set("X-API-Key", tc.apiKey)
		require.Equal(t, tc.want, surface.Credential(r), "%+v", tc)
	}
}
