package anthropic_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/cpclient"
	"github.com/mindrouter/mindrouter/dataplane/internal/cpclient/cpclienttest"
	"github.com/mindrouter/mindrouter/dataplane/internal/engine"
	"github.com/mindrouter/mindrouter/dataplane/internal/engine/ollama"
	"github.com/mindrouter/mindrouter/dataplane/internal/engine/vllm"
	"github.com/mindrouter/mindrouter/dataplane/internal/enginesim"
	"github.com/mindrouter/mindrouter/dataplane/internal/relay"
	"github.com/mindrouter/mindrouter/dataplane/internal/server"
	surface "github.com/mindrouter/mindrouter/dataplane/internal/surface/anthropic"
	openaisurface "github.com/mindrouter/mindrouter/dataplane/internal/surface/openai"
	"github.com/mindrouter/mindrouter/dataplane/internal/translate/anthropic/anthropictest"
)

// gateway is a data plane in the test process: fake control plane over gRPC,
// real relay and engines, and the Anthropic surface ahead of the OpenAI one
// behind the real server, as the app wires them.
type gateway struct {
	fake *cpclienttest.Server
	url  string
}

func newGateway(t *testing.T, cfg surface.Config, backends ...cpclienttest.Backend) *gateway {
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
		MaxBodyBytes: 1 << 20,
		Surfaces: []server.Surface{
			surface.New(r, cp, cfg, log),
			openaisurface.New(r, cp, openaisurface.Config{}, log),
		},
		Log: log,
	})
	require.NoError(t, err)
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return &gateway{fake: fake, url: hs.URL}
}

func sim(t *testing.T, id int64, eng enginesim.Engine, cfg enginesim.Config) (*enginesim.Server, cpclienttest.Backend) {
	t.Helper()
	cfg.Engine = eng
	if cfg.CompletionTokens == 0 {
		cfg.CompletionTokens = 5
	}
	cfg.Models = []enginesim.ModelSpec{{Name: "sim-llama", Capabilities: []string{"completion", "tools", "thinking"}}}
	s := enginesim.New(cfg)
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	e := relay.EngineOllama
	if eng == enginesim.EngineVLLM {
		e = relay.EngineVLLM
	}
	return s, cpclienttest.Backend{ID: id, Name: string(eng), URL: hs.URL, Engine: e, Model: "sim-llama", Simulated: true}
}

func (g *gateway) do(t *testing.T, method, path, body string, header ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, g.url+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("X-Api-Key", "mr2_key")
	req.Header.Set("Anthropic-Version", "2023-06-01")
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

func (g *gateway) post(t *testing.T, body string, header ...string) *http.Response {
	t.Helper()
	return g.do(t, http.MethodPost, "/anthropic/v1/messages", body, header...)
}

type apiError struct {
	Type  string `json:"type"`
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
	RequestID string `json:"request_id"`
}

func decodeError(t *testing.T, resp *http.Response) apiError {
	t.Helper()
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	var e apiError
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&e))
	require.Equal(t, "error", e.Type)
	require.NotEmpty(t, e.Error.Type)
	require.NotEmpty(t, e.Error.Message)
	require.Equal(t, resp.Header.Get("X-Request-ID"), e.RequestID)
	require.Equal(t, resp.Header.Get("X-Request-ID"), resp.Header.Get("Request-Id"))
	return e
}

func readStream(t *testing.T, resp *http.Response) *anthropictest.Message {
	t.Helper()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	events, err := anthropictest.Parse(body)
	require.NoError(t, err)
	m, err := anthropictest.Fold(events)
	require.NoError(t, err, "%s", body)
	return m
}

type message struct {
	ID      string `json:"id"`
	Type    string `json:"type"`
	Role    string `json:"role"`
	Model   string `json:"model"`
	Content []struct {
		Type      string          `json:"type"`
		Text      string          `json:"text"`
		Thinking  string          `json:"thinking"`
		Signature *string         `json:"signature"`
		ID        string          `json:"id"`
		Name      string          `json:"name"`
		Input     json.RawMessage `json:"input"`
	} `json:"content"`
	StopReason   string  `json:"stop_reason"`
	StopSequence *string `json:"stop_sequence"`
	Usage        struct {
		InputTokens  int64 `json:"input_tokens"`
		OutputTokens int64 `json:"output_tokens"`
	} `json:"usage"`
}

const hello = `{"model":"claude-x","max_tokens":64,"messages":[{"role":"user","content":"hello"}]`

func TestMessage(t *testing.T) {
	t.Parallel()
	for _, path := range []string{"/anthropic/v1/messages", "/v1/messages"} {
		t.Run(path, func(t *testing.T) {
			t.Parallel()
			_, b := sim(t, 1, enginesim.EngineVLLM, enginesim.Config{})
			g := newGateway(t, surface.Config{}, b)
			g.fake.SetQueuePosition(3)
			resp := g.do(t, http.MethodPost, path, hello+`}`)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Equal(t, "3", resp.Header.Get(surface.QueuePositionHeader))
			require.Equal(t, "true", resp.Header.Get(surface.SimulatedHeader))
			require.Equal(t, resp.Header.Get("X-Request-ID"), resp.Header.Get("Request-Id"))
			var m message
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&m))
			admitted := g.fake.Admits()[0]
			require.Equal(t, "msg_"+admitted.RequestID, m.ID)
			require.Equal(t, path, admitted.Endpoint)
			require.Equal(t, "mr2_key", admitted.Credential, "x-api-key is the credential")
			require.EqualValues(t, 64, admitted.MaxOutputTokens)
			require.Equal(t, "message", m.Type)
			require.Equal(t, "assistant", m.Role)
			require.Equal(t, "claude-x", m.Model, "clients see the name they asked for")
			require.Len(t, m.Content, 1)
			require.Equal(t, enginesim.DefaultText(5), m.Content[0].Text)
			require.Equal(t, "end_turn", m.StopReason)
			require.Nil(t, m.StopSequence)
			require.EqualValues(t, 5, m.Usage.OutputTokens, "the engine's exact count")
			require.Positive(t, m.Usage.InputTokens)
		})
	}
}

func twoCalls(enginesim.Request) *enginesim.Reply {
	return &enginesim.Reply{Content: "Checking.", ToolCalls: []enginesim.ToolCall{
		{Name: "get_weather", Arguments: `{"city":"Tokyo"}`}, {Name: "get_weather", Arguments: `{"city":"Paris","unit":"°C"}`},
	}}
}

const weatherRequest = `{"model":"claude-x","max_tokens":256,"messages":[{"role":"user","content":"weather?"}],` +
	`"tools":[{"name":"get_weather","description":"Weather","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}}]`

// TestToolCalls: Ollama's whole calls and vLLM's fragments both reach
// Anthropic clients as tool_use blocks whose inputs are the full arguments,
// streamed and not.
func TestToolCalls(t *testing.T) {
	t.Parallel()
	for _, eng := range []enginesim.Engine{enginesim.EngineOllama, enginesim.EngineVLLM} {
		for _, streamed := range []bool{false, true} {
			t.Run(string(eng)+map[bool]string{true: " streamed", false: ""}[streamed], func(t *testing.T) {
				t.Parallel()
				s, b := sim(t, 1, eng, enginesim.Config{Script: twoCalls})
				g := newGateway(t, surface.Config{}, b)
				resp := g.post(t, weatherRequest+`,"stream":`+map[bool]string{true: "true", false: "false"}[streamed]+`}`)
				type call struct{ id, name, input string }
				var text string
				var calls []call
				var stop string
				if streamed {
					m := readStream(t, resp)
					for _, blk := range m.Blocks {
						switch blk.Type {
						case "text":
							text += blk.Text
						case "tool_use":
							calls = append(calls, call{blk.ID, blk.Name, blk.Input})
						}
					}
					stop = m.StopReason
					require.Equal(t, s.Stats().CompletionTokens, m.OutputTokens)
				} else {
					require.Equal(t, http.StatusOK, resp.StatusCode)
					var m message
					require.NoError(t, json.NewDecoder(resp.Body).Decode(&m))
					for _, blk := range m.Content {
						switch blk.Type {
						case "text":
							text += blk.Text
						case "tool_use":
							calls = append(calls, call{blk.ID, blk.Name, string(blk.Input)})
						}
					}
					stop = m.StopReason
				}
				require.Equal(t, "Checking.", strings.TrimSpace(text))
				require.Equal(t, "tool_use", stop)
				require.Len(t, calls, 2)
				require.JSONEq(t, `{"city":"Tokyo"}`, calls[0].input)
				require.JSONEq(t, `{"city":"Paris","unit":"°C"}`, calls[1].input)
				for _, c := range calls {
					require.Equal(t, "get_weather", c.name)
					require.True(t, strings.HasPrefix(c.id, "toolu_"), c.id)
				}
				require.NotEqual(t, calls[0].id, calls[1].id)
				require.Contains(t, string(s.Stats().LastRequestBody), `"get_weather"`, "the tools reached the engine")
			})
		}
	}
}

func TestThinking(t *testing.T) {
	t.Parallel()
	script := func(enginesim.Request) *enginesim.Reply {
		return &enginesim.Reply{Thinking: "Multiply 17 by 23.", Content: "391"}
	}
	for _, eng := range []enginesim.Engine{enginesim.EngineOllama, enginesim.EngineVLLM} {
		for _, streamed := range []string{"false", "true"} {
			t.Run(string(eng)+" stream="+streamed, func(t *testing.T) {
				t.Parallel()
				_, b := sim(t, 1, eng, enginesim.Config{Script: script})
				g := newGateway(t, surface.Config{}, b)
				resp := g.post(t, `{"model":"claude-x","max_tokens":2048,"thinking":{"type":"enabled","budget_tokens":1024},`+
					`"messages":[{"role":"user","content":"17*23?"}],"stream":`+streamed+`}`)
				var thinking, text []string
				if streamed == "true" {
					for _, blk := range readStream(t, resp).Blocks {
						thinking, text = append(thinking, blk.Thinking), append(text, blk.Text)
					}
				} else {
					require.Equal(t, http.StatusOK, resp.StatusCode)
					var m message
					require.NoError(t, json.NewDecoder(resp.Body).Decode(&m))
					for _, blk := range m.Content {
						require.Contains(t, []string{"thinking", "text"}, blk.Type)
						if blk.Type == "thinking" {
							require.NotNil(t, blk.Signature, "thinking blocks carry a signature field")
						}
						thinking, text = append(thinking, blk.Thinking), append(text, blk.Text)
					}
				}
				require.Len(t, thinking, 2, "a thinking block, then a text block")
				require.Equal(t, "Multiply 17 by 23.", strings.TrimSpace(thinking[0]))
				require.Equal(t, "391", strings.TrimSpace(text[1]))
				require.Equal(t, []relay.Capability{relay.CapabilityThinking}, g.fake.Admits()[0].Needs)
			})
		}
	}
}

// TestRequestReachesTheEngine: the system prompt, stop sequences and sampling
// parameters arrive in each engine's own fields.
func TestRequestReachesTheEngine(t *testing.T) {
	t.Parallel()
	body := `{"model":"claude-x","max_tokens":32,"system":[{"type":"text","text":"You are terse."}],"temperature":0.2,"top_k":7,` +
		`"stop_sequences":["###"],"messages":[{"role":"user","content":"hi"}]}`
	t.Run("vllm", func(t *testing.T) {
		t.Parallel()
		s, b := sim(t, 1, enginesim.EngineVLLM, enginesim.Config{})
		g := newGateway(t, surface.Config{}, b)
		require.Equal(t, http.StatusOK, g.post(t, body).StatusCode)
		var sent struct {
			Messages []struct {
				Role    string `json:"role"`
				Content string `json:"content"`
			} `json:"messages"`
			Stop        []string `json:"stop"`
			Temperature float64  `json:"temperature"`
			TopK        int      `json:"top_k"`
			MaxTokens   int      `json:"max_tokens"`
		}
		require.NoError(t, json.Unmarshal(s.Stats().LastRequestBody, &sent))
		require.Equal(t, "system", sent.Messages[0].Role)
		require.Equal(t, "You are terse.", sent.Messages[0].Content)
		require.Equal(t, []string{"###"}, sent.Stop)
		require.InDelta(t, 0.2, sent.Temperature, 1e-9)
		require.Equal(t, 7, sent.TopK)
		require.Equal(t, 32, sent.MaxTokens)
	})
	t.Run("ollama", func(t *testing.T) {
		t.Parallel()
		s, b := sim(t, 1, enginesim.EngineOllama, enginesim.Config{})
		g := newGateway(t, surface.Config{}, b)
		require.Equal(t, http.StatusOK, g.post(t, body).StatusCode)
		var sent struct {
			Messages []struct {
				Role    string `json:"role"`
				Content string `json:"content"`
			} `json:"messages"`
			Options map[string]any `json:"options"`
		}
		require.NoError(t, json.Unmarshal(s.Stats().LastRequestBody, &sent))
		require.Equal(t, "system", sent.Messages[0].Role)
		require.Equal(t, "You are terse.", sent.Messages[0].Content)
		require.Equal(t, []any{"###"}, sent.Options["stop"])
		require.EqualValues(t, 7, sent.Options["top_k"])
		require.EqualValues(t, 32, sent.Options["num_predict"])
	})
}

// TestPings: a stream waiting for its first token starts and pings, and pings
// again while the engine is silent.
func TestPings(t *testing.T) {
	t.Parallel()
	_, b := sim(t, 1, enginesim.EngineOllama, enginesim.Config{TTFT: 300 * time.Millisecond, InterTokenDelay: 150 * time.Millisecond, CompletionTokens: 3})
	g := newGateway(t, surface.Config{PingInterval: 40 * time.Millisecond}, b)
	resp := g.post(t, hello+`,"stream":true}`)
	m := readStream(t, resp)
	require.Greater(t, m.Pings, 3, "pings during the wait for the first token and between tokens")
	require.Equal(t, enginesim.DefaultText(3), m.Blocks[0].Text)
	require.EqualValues(t, 3, m.OutputTokens)
}

func TestMidStreamFailureEndsWithErrorEvent(t *testing.T) {
	t.Parallel()
	_, b1 := sim(t, 1, enginesim.EngineVLLM, enginesim.Config{Script: func(enginesim.Request) *enginesim.Reply {
		return &enginesim.Reply{Content: "a b c d e f", ErrorMessage: enginesim.DropConnection}
	}})
	_, b2 := sim(t, 2, enginesim.EngineVLLM, enginesim.Config{})
	g := newGateway(t, surface.Config{}, b1, b2)
	m := readStream(t, g.post(t, hello+`,"stream":true}`))
	require.False(t, m.Complete, "a failed stream does not claim success")
	require.Equal(t, "api_error", m.Error.Type)
	require.Len(t, g.fake.Admits(), 1, "no retry after the first byte")
}
