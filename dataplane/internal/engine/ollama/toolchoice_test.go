package ollama_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/engine"
	"github.com/mindrouter/mindrouter/dataplane/internal/engine/ollama"
	"github.com/mindrouter/mindrouter/dataplane/internal/enginesim"
)

// toolSim is a simulated Ollama whose reply script counts its calls; reply
// gets the 1-based call number and the names of the tools sent.
func toolSim(t *testing.T, reply func(call int, tools []string) *enginesim.Reply) (*ollama.Engine, engine.Target, *atomic.Int32) {
	t.Helper()
	e, tgt, calls, _ := toolSimMetered(t, reply)
	return e, tgt, calls
}

// toolSimMetered is toolSim with the engine's metrics in a registry of their own.
func toolSimMetered(t *testing.T, reply func(call int, tools []string) *enginesim.Reply) (*ollama.Engine, engine.Target, *atomic.Int32, *prometheus.Registry) {
	t.Helper()
	var calls atomic.Int32
	sim := enginesim.New(enginesim.Config{Engine: enginesim.EngineOllama, Script: func(r enginesim.Request) *enginesim.Reply {
		var tools []struct {
			Function struct {
				Name string `json:"name"`
			} `json:"function"`
		}
		if len(r.Tools) > 0 {
			if err := json.Unmarshal(r.Tools, &tools); err != nil {
				return &enginesim.Reply{Status: http.StatusBadRequest, ErrorMessage: err.Error()}
			}
		}
		names := make([]string, 0, len(tools))
		for _, tl := range tools {
			names = append(names, tl.Function.Name)
		}
		return reply(int(calls.Add(1)), names)
	}})
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	reg := prometheus.NewRegistry()
	m, err := ollama.NewMetrics(reg)
	require.NoError(t, err)
	e := ollama.New(ollama.Config{Client: srv.Client(), Metrics: m})
	return e, engine.Target{URL: srv.URL, Model: "sim-llama"}, &calls, reg
}

// retries reads mindrouter_dp_tool_choice_retries_total by result.
func retries(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "mindrouter_dp_tool_choice_retries_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			out[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
	}
	return out
}

func toolRequest(stream bool, choice *canonical.ToolChoice) *canonical.Request {
	req := hi(stream)
	req.Tools = []canonical.Tool{
		{Name: "get_weather", Parameters: json.RawMessage(`{"type":"object"}`)},
		{Name: "get_time", Parameters: json.RawMessage(`{"type":"object"}`)},
	}
	req.ToolChoice = choice
	return req
}

// run makes the call streamed or not and returns the accumulated answer and
// the number of chunks the client was given.
func run(e *ollama.Engine, tgt engine.Target, req *canonical.Request) (*canonical.Response, int, error) {
	if !req.Stream {
		resp, err := e.Chat(context.Background(), tgt, req)
		return resp, 0, err
	}
	var acc canonical.Accumulator
	chunks := 0
	err := e.ChatStream(context.Background(), tgt, req, func(c canonical.Chunk) error {
		chunks++
		acc.Add(c)
		return nil
	})
	if err != nil {
		return nil, chunks, err
	}
	return acc.Response(), chunks, nil
}

// TestToolChoiceRequired: tool_choice required reaches Ollama as all the
// tools plus an instruction, and the scripted tool call comes back.
func TestToolChoiceRequired(t *testing.T) {
	t.Parallel()
	for _, stream := range []bool{false, true} {
		e, tgt, calls, reg := toolSimMetered(t, func(_ int, tools []string) *enginesim.Reply {
			if len(tools) != 2 {
				return &enginesim.Reply{Content: "wrong tools"}
			}
			return &enginesim.Reply{ToolCalls: []enginesim.ToolCall{{Name: "get_weather", Arguments: `{"city":"Paris"}`}}}
		})
		resp, _, err := run(e, tgt, toolRequest(stream, &canonical.ToolChoice{Mode: canonical.ToolChoiceRequired}))
		require.NoError(t, err, "stream=%v", stream)
		require.Len(t, resp.Choices[0].Message.ToolCalls, 1)
		require.Equal(t, "get_weather", resp.Choices[0].Message.ToolCalls[0].Name)
		require.Equal(t, canonical.FinishToolCalls, resp.Choices[0].FinishReason)
		require.Equal(t, int32(1), calls.Load(), "no retry when the call came")
		require.Equal(t, map[string]float64{"recovered": 0, "missing": 0, "failed": 0}, retries(t, reg), "nothing counted, every result exported")
	}
}

// TestToolChoiceNamed: a named function is the only tool Ollama sees.
func TestToolChoiceNamed(t *testing.T) {
	t.Parallel()
	for _, stream := range []bool{false, true} {
		e, tgt, _ := toolSim(t, func(_ int, tools []string) *enginesim.Reply {
			if len(tools) != 1 {
				return &enginesim.Reply{Content: "wrong tools"}
			}
			return &enginesim.Reply{ToolCalls: []enginesim.ToolCall{{Name: tools[0], Arguments: `{}`}}}
		})
		resp, _, err := run(e, tgt, toolRequest(stream, &canonical.ToolChoice{Mode: canonical.ToolChoiceFunction, Name: "get_time"}))
		require.NoError(t, err, "stream=%v", stream)
		require.Len(t, resp.Choices[0].Message.ToolCalls, 1)
		require.Equal(t, "get_time", resp.Choices[0].Message.ToolCalls[0].Name)
	}
}

// TestToolChoiceRetry: an answer without the required call is asked for
// once more; the second answer's call is what the client gets, and a
// stream shows nothing of the first answer.
func TestToolChoiceRetry(t *testing.T) {
	t.Parallel()
	for _, stream := range []bool{false, true} {
		e, tgt, calls, reg := toolSimMetered(t, func(call int, _ []string) *enginesim.Reply {
			if call == 1 {
				return &enginesim.Reply{Content: "I would rather chat"}
			}
			return &enginesim.Reply{ToolCalls: []enginesim.ToolCall{{Name: "get_weather", Arguments: `{}`}}}
		})
		resp, _, err := run(e, tgt, toolRequest(stream, &canonical.ToolChoice{Mode: canonical.ToolChoiceRequired}))
		require.NoError(t, err, "stream=%v", stream)
		require.Equal(t, int32(2), calls.Load())
		require.Empty(t, resp.Choices[0].Message.Text(), "nothing of the refused answer reaches the client")
		require.Len(t, resp.Choices[0].Message.ToolCalls, 1)
		require.Equal(t, map[string]float64{"recovered": 1, "missing": 0, "failed": 0}, retries(t, reg))
	}
}

// TestToolChoiceRetryFails: a retry that the backend answers with an error
// gives the client that error and counts as failed.
func TestToolChoiceRetryFails(t *testing.T) {
	t.Parallel()
	for _, stream := range []bool{false, true} {
		e, tgt, calls, reg := toolSimMetered(t, func(call int, _ []string) *enginesim.Reply {
			if call == 1 {
				return &enginesim.Reply{Content: "I would rather chat"}
			}
			return &enginesim.Reply{Status: http.StatusInternalServerError, ErrorMessage: "model crashed"}
		})
		_, _, err := run(e, tgt, toolRequest(stream, &canonical.ToolChoice{Mode: canonical.ToolChoiceRequired}))
		require.ErrorContains(t, err, "model crashed", "stream=%v", stream)
		require.Equal(t, int32(2), calls.Load())
		require.Equal(t, map[string]float64{"recovered": 0, "missing": 0, "failed": 1}, retries(t, reg))
	}
}

// TestToolChoiceMissing: two answers in text give the client a 502
// tool_call_missing, before any chunk of a stream; without tool_choice the
// same text answer is fine.
func TestToolChoiceMissing(t *testing.T) {
	t.Parallel()
	for _, stream := range []bool{false, true} {
		for _, choice := range []*canonical.ToolChoice{
			{Mode: canonical.ToolChoiceRequired},
			{Mode: canonical.ToolChoiceFunction, Name: "get_time"},
		} {
			e, tgt, calls, reg := toolSimMetered(t, func(int, []string) *enginesim.Reply {
				// A call of another function does not satisfy a named choice.
				if choice.Name != "" {
					return &enginesim.Reply{ToolCalls: []enginesim.ToolCall{{Name: "get_weather", Arguments: `{}`}}}
				}
				return &enginesim.Reply{Content: "just text"}
			})
			_, chunks, err := run(e, tgt, toolRequest(stream, choice))
			require.Error(t, err)
			require.Equal(t, int32(2), calls.Load(), "one retry")
			require.Zero(t, chunks, "no byte of a stream was sent")
			require.False(t, engine.IsRetryable(err))
			var ce *canonical.Error
			require.ErrorAs(t, err, &ce)
			require.Equal(t, canonical.KindBackend, ce.Kind)
			require.Equal(t, ollama.CodeToolCallMissing, ce.Code)
			require.Contains(t, ce.Message, "tool_choice requires")
			require.Equal(t, map[string]float64{"recovered": 0, "missing": 1, "failed": 0}, retries(t, reg))
		}
		e, tgt, calls := toolSim(t, func(int, []string) *enginesim.Reply { return &enginesim.Reply{Content: "just text"} })
		resp, _, err := run(e, tgt, toolRequest(stream, &canonical.ToolChoice{Mode: canonical.ToolChoiceAuto}))
		require.NoError(t, err)
		require.Equal(t, "just text", resp.Choices[0].Message.Text())
		require.Equal(t, int32(1), calls.Load())
	}
}
