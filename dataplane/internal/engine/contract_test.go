package engine_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/engine"
	"github.com/mindrouter/mindrouter/dataplane/internal/engine/ollama"
	"github.com/mindrouter/mindrouter/dataplane/internal/engine/vllm"
	"github.com/mindrouter/mindrouter/dataplane/internal/enginesim"
)

// engines are the engines under the shared contract, each with the simulator
// of its backend.
var engines = []struct {
	name string
	sim  enginesim.Engine
	new  func(c *http.Client) engine.Engine
}{
	{"ollama", enginesim.EngineOllama, func(c *http.Client) engine.Engine {
		return ollama.New(ollama.Config{Client: c, IdleTimeout: 2 * time.Second})
	}},
	{"vllm", enginesim.EngineVLLM, func(c *http.Client) engine.Engine {
		return vllm.New(vllm.Config{Client: c, IdleTimeout: 2 * time.Second})
	}},
}

func newClient() *http.Client {
	return engine.NewClient(engine.NewTransport(engine.TransportConfig{ResponseHeaderTimeout: 5 * time.Second}))
}

func chatRequest(stream bool) *canonical.Request {
	return &canonical.Request{
		Model:    "sim-llama",
		Messages: []canonical.Message{{Role: canonical.RoleUser, Content: []canonical.Part{canonical.TextPart("Say something.")}}},
		Stream:   stream,
	}
}

func collect(t *testing.T, e engine.Engine, tgt engine.Target, req *canonical.Request) (*canonical.Response, int, error) {
	t.Helper()
	var acc canonical.Accumulator
	n := 0
	err := e.ChatStream(context.Background(), tgt, req, func(c canonical.Chunk) error {
		require.False(t, c.Empty(), "engines emit only chunks that carry something")
		n++
		acc.Add(c)
		return nil
	})
	return acc.Response(), n, err
}

func TestEngineContract(t *testing.T) {
	t.Parallel()
	for _, eng := range engines {
		t.Run(eng.name, func(t *testing.T) {
			t.Parallel()
			script := func(req enginesim.Request) *enginesim.Reply {
				switch req.Messages[len(req.Messages)-1].Content {
				case "tools":
					return &enginesim.Reply{Content: "Let me check.", ToolCalls: []enginesim.ToolCall{
						{Name: "get_weather", Arguments: `{"city":"Tokyo"}`},
						{Name: "get_time", Arguments: `{"zone":"UTC"}`},
					}}
				case "think":
					return &enginesim.Reply{Thinking: "Let me think.", Content: "Done thinking."}
				case "refuse":
					return &enginesim.Reply{Status: http.StatusBadRequest, ErrorMessage: "bad request from engine"}
				case "crash":
					return &enginesim.Reply{Status: http.StatusInternalServerError, ErrorMessage: "engine crashed"}
				case "drop":
					return &enginesim.Reply{Content: "one two three four", ErrorMessage: enginesim.DropConnection}
				}
				return nil
			}
			sim := enginesim.New(enginesim.Config{Engine: eng.sim, Script: script, CompletionTokens: 8,
				Models: []enginesim.ModelSpec{{Name: "sim-llama", Capabilities: []string{"completion", "tools", "thinking"}}}})
			srv := httptest.NewServer(sim.Handler())
			t.Cleanup(srv.Close)
			e := eng.new(newClient())
			tgt := engine.Target{URL: srv.URL, Model: "sim-llama", ContextLength: 4096}
			ask := func(text string, stream bool) *canonical.Request {
				r := chatRequest(stream)
				r.Messages[0].Content = []canonical.Part{canonical.TextPart(text)}
				return r
			}

			t.Run("streamed text with exact usage", func(t *testing.T) {
				resp, n, err := collect(t, e, tgt, chatRequest(true))
				require.NoError(t, err)
				require.Greater(t, n, 1)
				require.NotEmpty(t, resp.Choices[0].Message.Text())
				require.Equal(t, canonical.FinishStop, resp.Choices[0].FinishReason)
				require.NotNil(t, resp.Usage)
				require.Equal(t, int64(8), resp.Usage.Completion)
				require.Positive(t, resp.Usage.Prompt)
				require.False(t, resp.Usage.Estimated)
			})
			t.Run("whole answer", func(t *testing.T) {
				resp, err := e.Chat(context.Background(), tgt, chatRequest(false))
				require.NoError(t, err)
				require.NotEmpty(t, resp.Choices[0].Message.Text())
				require.Equal(t, canonical.FinishStop, resp.Choices[0].FinishReason)
				require.Equal(t, int64(8), resp.Usage.Completion)
			})
			t.Run("streamed tool calls have stable indexes and ids", func(t *testing.T) {
				resp, _, err := collect(t, e, tgt, ask("tools", true))
				require.NoError(t, err)
				msg := resp.Choices[0].Message
				require.Equal(t, canonical.FinishToolCalls, resp.Choices[0].FinishReason)
				require.Len(t, msg.ToolCalls, 2)
				require.Equal(t, "get_weather", msg.ToolCalls[0].Name)
				require.JSONEq(t, `{"city":"Tokyo"}`, msg.ToolCalls[0].Arguments)
				require.Equal(t, "get_time", msg.ToolCalls[1].Name)
				require.JSONEq(t, `{"zone":"UTC"}`, msg.ToolCalls[1].Arguments)
				require.NotEmpty(t, msg.ToolCalls[0].ID)
				require.NotEqual(t, msg.ToolCalls[0].ID, msg.ToolCalls[1].ID)
			})
			t.Run("whole tool calls", func(t *testing.T) {
				resp, err := e.Chat(context.Background(), tgt, ask("tools", false))
				require.NoError(t, err)
				require.Equal(t, canonical.FinishToolCalls, resp.Choices[0].FinishReason)
				require.Len(t, resp.Choices[0].Message.ToolCalls, 2)
			})
			t.Run("reasoning", func(t *testing.T) {
				req := ask("think", true)
				req.Think = &canonical.Thinking{Enabled: true}
				resp, _, err := collect(t, e, tgt, req)
				require.NoError(t, err)
				require.Equal(t, "Let me think.", resp.Choices[0].Message.Reasoning)
				require.Equal(t, "Done thinking.", resp.Choices[0].Message.Text())
			})
			t.Run("a 4xx is a refusal with the engine's message", func(t *testing.T) {
				for _, stream := range []bool{true, false} {
					var err error
					if stream {
						_, _, err = collect(t, e, tgt, ask("refuse", true))
					} else {
						_, err = e.Chat(context.Background(), tgt, ask("refuse", false))
					}
					var ee *engine.Error
					require.ErrorAs(t, err, &ee)
					require.False(t, ee.Retryable)
					require.Equal(t, http.StatusBadRequest, ee.Status)
					require.Equal(t, "bad request from engine", ee.Message)
					ce := canonical.AsError(err)
					require.Equal(t, http.StatusBadRequest, ce.Status)
					require.Equal(t, "bad request from engine", ce.Message)
				}
			})
			t.Run("a 5xx is retryable", func(t *testing.T) {
				_, _, err := collect(t, e, tgt, ask("crash", true))
				require.True(t, engine.IsRetryable(err), "err: %v", err)
				require.Equal(t, canonical.KindBackend, canonical.AsError(err).Kind)
			})
			t.Run("a dropped stream is retryable after some chunks", func(t *testing.T) {
				_, n, err := collect(t, e, tgt, ask("drop", true))
				require.True(t, engine.IsRetryable(err), "err: %v", err)
				require.Positive(t, n)
			})
			t.Run("emit errors come back unchanged", func(t *testing.T) {
				gone := errors.New("client gone")
				err := e.ChatStream(context.Background(), tgt, chatRequest(true), func(canonical.Chunk) error { return gone })
				require.ErrorIs(t, err, gone)
				require.False(t, engine.IsRetryable(err))
			})
			t.Run("cancellation is the caller's", func(t *testing.T) {
				ctx, cancel := context.WithCancel(context.Background())
				err := e.ChatStream(ctx, tgt, chatRequest(true), func(canonical.Chunk) error { cancel(); return nil })
				require.ErrorIs(t, err, context.Canceled)
				require.False(t, engine.IsRetryable(err))
			})
			t.Run("unknown model passes the engine's 404 through", func(t *testing.T) {
				_, err := e.Chat(context.Background(), engine.Target{URL: srv.URL, Model: "nope"}, chatRequest(false))
				var ee *engine.Error
				require.ErrorAs(t, err, &ee)
				require.Equal(t, http.StatusNotFound, ee.Status)
				require.Equal(t, canonical.KindNotFound, canonical.AsError(err).Kind)
			})
		})
	}
}

func TestEngineUnreachableIsRetryable(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	url := "http://" + ln.Addr().String()
	require.NoError(t, ln.Close())
	for _, eng := range engines {
		e := eng.new(newClient())
		_, err := e.Chat(context.Background(), engine.Target{URL: url, Model: "m"}, chatRequest(false))
		require.True(t, engine.IsRetryable(err), "%s: %v", eng.name, err)
		require.NotContains(t, canonical.AsError(err).Message, "127.0.0.1", "addresses stay out of client messages")
		_, _, err = collect(t, e, engine.Target{URL: url, Model: "m"}, chatRequest(true))
		require.True(t, engine.IsRetryable(err), "%s: %v", eng.name, err)
	}
}

// TestEngineIdleTimeout: a backend that starts a stream and goes silent is a
// retryable failure after the idle timeout, not a hang.
func TestEngineIdleTimeout(t *testing.T) {
	t.Parallel()
	first := map[string]string{
		"ollama": `{"model":"m","message":{"role":"assistant","content":"hi"},"done":false}` + "\n",
		"vllm":   `data: {"choices":[{"index":0,"delta":{"content":"hi"}}]}` + "\n\n",
	}
	for _, eng := range engines {
		t.Run(eng.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = w.Write([]byte(first[eng.name]))
				w.(http.Flusher).Flush()
				<-r.Context().Done()
			}))
			t.Cleanup(srv.Close)
			var e engine.Engine
			if eng.name == "ollama" {
				e = ollama.New(ollama.Config{Client: newClient(), IdleTimeout: 100 * time.Millisecond})
			} else {
				e = vllm.New(vllm.Config{Client: newClient(), IdleTimeout: 100 * time.Millisecond})
			}
			start := time.Now()
			_, n, err := collect(t, e, engine.Target{URL: srv.URL, Model: "m"}, chatRequest(true))
			require.True(t, engine.IsRetryable(err), "err: %v", err)
			require.ErrorIs(t, err, engine.ErrIdle)
			require.Equal(t, 1, n)
			require.Less(t, time.Since(start), 2*time.Second)
		})
	}
}

// TestEngineMalformedStreams: garbage and streams cut before their end are
// retryable backend failures.
func TestEngineMalformedStreams(t *testing.T) {
	t.Parallel()
	bodies := map[string][]string{
		"ollama": {"not json\n", `{"model":"m","message":{"role":"assistant","content":"hi"},"done":false}` + "\n", `{"error":"runner died"}` + "\n"},
		"vllm":   {"data: not json\n\n", "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\n", "data: {\"error\":{\"message\":\"engine died\",\"code\":500}}\n\n"},
	}
	for _, eng := range engines {
		for i, body := range bodies[eng.name] {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				_, _ = w.Write([]byte(body))
			}))
			_, _, err := collect(t, eng.new(newClient()), engine.Target{URL: srv.URL, Model: "m"}, chatRequest(true))
			srv.Close()
			require.True(t, engine.IsRetryable(err), "%s body %d: %v", eng.name, i, err)
		}
	}
}

func TestTargetMaxTokens(t *testing.T) {
	t.Parallel()
	tests := []struct{ cap, requested, want int64 }{
		{0, 0, 0}, {0, 100, 100}, {50, 0, 50}, {50, 100, 50}, {500, 100, 100},
	}
	for _, tc := range tests {
		require.Equal(t, tc.want, engine.Target{MaxOutputTokens: tc.cap}.MaxTokens(tc.requested))
	}
}
