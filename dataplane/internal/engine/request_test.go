package engine_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/engine"
	"github.com/mindrouter/mindrouter/dataplane/internal/enginesim"
	"github.com/mindrouter/mindrouter/dataplane/internal/golden"
)

func ptr[T any](v T) *T { return &v }

// fullRequest sets every parameter the canonical model carries.
func fullRequest(stream bool) *canonical.Request {
	return &canonical.Request{
		Model: "client-alias",
		Messages: []canonical.Message{
			{Role: canonical.RoleUser, Content: []canonical.Part{canonical.TextPart("What is the weather in Oslo?")}},
			{Role: canonical.RoleSystem, Content: []canonical.Part{canonical.TextPart("Be brief.")}},
			{Role: canonical.RoleAssistant, ToolCalls: []canonical.ToolCall{{ID: "call_1", Name: "get_weather", Arguments: `{"city":"Oslo"}`}}},
			{Role: canonical.RoleTool, ToolCallID: "call_1", Content: []canonical.Part{canonical.TextPart(`{"temp":-3}`)}},
			{Role: canonical.RoleUser, Content: []canonical.Part{canonical.TextPart("And as JSON?"),
				{Type: canonical.PartImage, Image: &canonical.Image{MediaType: "image/png", Data: "iVBORw0KGgo="}}}},
		},
		Tools: []canonical.Tool{{Name: "get_weather", Description: "Weather by city",
			Parameters: json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"}}}`)}},
		ToolChoice: &canonical.ToolChoice{Mode: canonical.ToolChoiceAuto},
		Sampling: canonical.Sampling{
			Temperature: ptr(0.7), TopP: ptr(0.9), TopK: ptr(int64(40)), MinP: ptr(0.05),
			PresencePenalty: ptr(0.5), FrequencyPenalty: ptr(0.25), RepetitionPenalty: ptr(1.1),
			Seed: ptr(int64(42)), Stop: []string{"\n\n", "END"}, MaxTokens: 300,
		},
		ResponseFormat: &canonical.ResponseFormat{Type: canonical.FormatJSONSchema, Name: "weather",
			Schema: json.RawMessage(`{"type":"object","properties":{"temp":{"type":"number"}},"required":["temp"]}`)},
		Think:  &canonical.Thinking{Enabled: true, Effort: "high"},
		Stream: stream,
		User:   "user-7",
	}
}

// TestRequestGolden records, byte for byte, what each engine's backend
// receives for a request that sets every parameter: sampling, stop, output
// limit (capped by the lease), context window, tools, format, thinking,
// images, system-first ordering.
func TestRequestGolden(t *testing.T) {
	t.Parallel()
	for _, e := range engines {
		for _, stream := range []bool{false, true} {
			name := e.name + map[bool]string{false: "", true: "_stream"}[stream]
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				sim := enginesim.New(enginesim.Config{Engine: e.sim, CompletionTokens: 2, Models: []enginesim.ModelSpec{
					{Name: "sim-llama", Capabilities: []string{"completion", "tools", "vision", "thinking"}},
				}})
				srv := httptest.NewServer(sim.Handler())
				t.Cleanup(srv.Close)
				eng := e.new(srv.Client())
				tgt := engine.Target{URL: srv.URL, Model: "sim-llama", ContextLength: 8192, MaxOutputTokens: 256}
				req := fullRequest(stream)
				var err error
				if stream {
					_, _, err = collect(t, eng, tgt, req)
				} else {
					_, err = eng.Chat(context.Background(), tgt, req)
				}
				require.NoError(t, err)
				golden.Assert(t, "testdata/request/"+name+".golden", golden.Indent(sim.Stats().LastRequestBody))
			})
		}
	}
}
