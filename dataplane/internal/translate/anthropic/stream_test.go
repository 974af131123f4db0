package anthropic_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/golden"
	"github.com/mindrouter/mindrouter/dataplane/internal/stream"
	"github.com/mindrouter/mindrouter/dataplane/internal/translate/anthropic"
	"github.com/mindrouter/mindrouter/dataplane/internal/translate/anthropic/anthropictest"
	"github.com/mindrouter/mindrouter/dataplane/internal/translate/ollama"
	"github.com/mindrouter/mindrouter/dataplane/internal/translate/openai"
)

var goldenMeta = anthropic.Meta{ID: "msg_01GOLDEN", Model: "claude-via-mindrouter"}

// engineChunks decodes a recorded engine stream the way the engines do: vLLM
// server-sent events with the usage chunk held back to the end, or Ollama
// NDJSON lines with whole tool calls numbered across the stream.
func engineChunks(t *testing.T, path string) []canonical.Chunk {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	var out []canonical.Chunk
	switch filepath.Ext(path) {
	case ".sse":
		r := stream.NewSSEReader(bytes.NewReader(raw), 0)
		var dec openai.ChunkDecoder
		var usage *canonical.Usage
		for {
			ev, err := r.Next()
			require.NoError(t, err, "a recorded vLLM stream ends with [DONE]")
			if string(ev.Data) == "[DONE]" {
				break
			}
			chunks, err := dec.Decode(ev.Data)
			require.NoError(t, err)
			for _, c := range chunks {
				if c.Usage != nil {
					usage, c.Usage = c.Usage, nil
				}
				if !c.Empty() {
					out = append(out, c)
				}
			}
		}
		if usage != nil {
			out = append(out, canonical.Chunk{Usage: usage})
		}
	case ".ndjson":
		r := stream.NewNDJSONReader(bytes.NewReader(raw), 0)
		dec := ollama.StreamDecoder{IDPrefix: "call_gold"}
		for {
			line, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err)
			c, _, err := dec.Decode(line)
			require.NoError(t, err)
			if !c.Empty() {
				out = append(out, c)
			}
		}
	}
	return out
}

func encodeStream(t testing.TB, chunks []canonical.Chunk) []byte {
	t.Helper()
	enc := anthropic.NewStreamEncoder(goldenMeta, 42)
	out := enc.AppendStart(nil)
	for i := range chunks {
		var err error
		out, err = enc.AppendChunk(out, &chunks[i])
		require.NoError(t, err)
	}
	return enc.AppendFinish(out)
}

func fold(t testing.TB, body []byte) *anthropictest.Message {
	t.Helper()
	events, err := anthropictest.Parse(body)
	require.NoError(t, err)
	m, err := anthropictest.Fold(events)
	require.NoError(t, err, "%s", body)
	return m
}

func text(s string) anthropictest.Block { return anthropictest.Block{Type: "text", Text: s} }
func thinking(s string) anthropictest.Block {
	return anthropictest.Block{Type: "thinking", Thinking: s}
}
func toolUse(id, name, input string) anthropictest.Block {
	return anthropictest.Block{Type: "tool_use", ID: id, Name: name, Input: input}
}

// TestStreamGolden translates recorded engine streams into Anthropic event
// streams, byte for byte (testdata/golden; go test -update rewrites them), and
// reads each back as a strict client would.
func TestStreamGolden(t *testing.T) {
	t.Parallel()
	weatherTokyo, weatherParis := `{"city": "Tokyo"}`, `{"city": "Paris", "unit": "°C"}`
	tests := []struct {
		file          string
		blocks        []anthropictest.Block
		stop          string
		input, output int64
	}{
		{"vllm_text.sse", []anthropictest.Block{text("Hello, \"world\" <&>\n")}, "end_turn", 12, 3},
		{"vllm_reasoning.sse", []anthropictest.Block{thinking("Multiply 17 by 23."), text("391")}, "end_turn", 20, 4},
		{"vllm_parallel_tools.sse", []anthropictest.Block{
			text("Checking both."),
			toolUse("toolu_chatcmpl-tool-5d6e7f80", "get_weather", weatherTokyo),
			toolUse("toolu_chatcmpl-tool-9a8b7c6d", "get_weather", weatherParis),
		}, "tool_use", 169, 21},
		{"vllm_length.sse", []anthropictest.Block{text("Once upon a")}, "max_tokens", 9, 3},
		{"ollama_text.ndjson", []anthropictest.Block{text("Hello, world")}, "end_turn", 22, 2},
		{"ollama_thinking.ndjson", []anthropictest.Block{thinking("Multiply 17 by 23."), text("391")}, "end_turn", 20, 4},
		{"ollama_tools.ndjson", []anthropictest.Block{
			toolUse("toolu_call_k3v9x2ab", "get_weather", `{"city":"Tokyo"}`),
			toolUse("toolu_call_p7q2m4cd", "get_weather", `{"city":"Paris","unit":"°C"}`),
		}, "tool_use", 169, 15},
		{"ollama_tools_split.ndjson", []anthropictest.Block{
			text("Checking both."),
			toolUse("toolu_call_gold_0", "get_weather", `{"city":"Tokyo"}`),
			toolUse("toolu_call_gold_1", "get_time", `{}`),
		}, "tool_use", 169, 21},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			out := encodeStream(t, engineChunks(t, filepath.Join("testdata", "engine", tc.file)))
			name := strings.TrimSuffix(tc.file, filepath.Ext(tc.file))
			golden.Assert(t, filepath.Join("testdata", "golden", name+".anthropic.sse"), out)

			m := fold(t, out)
			require.Equal(t, tc.blocks, m.Blocks)
			require.Equal(t, tc.stop, m.StopReason)
			require.Nil(t, m.StopSequence)
			require.Equal(t, "msg_01GOLDEN", m.ID)
			require.EqualValues(t, 42, m.StartInputTokens, "message_start has the prompt estimate")
			require.EqualValues(t, 1, m.StartOutputTokens)
			require.Equal(t, tc.input, m.InputTokens, "message_delta has the engine's exact counts")
			require.Equal(t, tc.output, m.OutputTokens)
			require.Equal(t, 1, m.Pings, "one ping right after message_start")
		})
	}
}

func TestStreamEdgeCases(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		chunks []canonical.Chunk
		blocks []anthropictest.Block
		stop   string
		seq    *string
	}{
		{
			name:   "nothing at all is one empty text block",
			chunks: []canonical.Chunk{{Role: canonical.RoleAssistant}, {FinishReason: canonical.FinishStop}},
			blocks: []anthropictest.Block{text("")},
			stop:   "end_turn",
		},
		{
			name:   "no finish reason ends the turn",
			chunks: []canonical.Chunk{{Content: "hi"}},
			blocks: []anthropictest.Block{text("hi")},
			stop:   "end_turn",
		},
		{
			name: "a name arriving after the id opens the block then, with the arguments so far",
			chunks: []canonical.Chunk{
				{ToolCalls: []canonical.ToolCallDelta{{Index: 0, ID: "c1"}}},
				{ToolCalls: []canonical.ToolCallDelta{{Index: 0, Arguments: `{"a":`}}},
				{ToolCalls: []canonical.ToolCallDelta{{Index: 0, Name: "f", Arguments: `1}`}}},
				{FinishReason: canonical.FinishToolCalls},
			},
			blocks: []anthropictest.Block{toolUse("toolu_c1", "f", `{"a":1}`)},
			stop:   "tool_use",
		},
		{
			name: "a call that never got a name is dropped",
			chunks: []canonical.Chunk{
				{Content: "x"},
				{ToolCalls: []canonical.ToolCallDelta{{Index: 0, Arguments: `{}`}}},
				{FinishReason: canonical.FinishStop},
			},
			blocks: []anthropictest.Block{text("x")},
			stop:   "end_turn",
		},
		{
			name: "text after a tool call is a new block",
			chunks: []canonical.Chunk{
				{ToolCalls: []canonical.ToolCallDelta{{Index: 0, Name: "f", Arguments: `{}`}}},
				{Content: "done", Reasoning: "hm"},
			},
			blocks: []anthropictest.Block{toolUse("toolu_01GOLDEN_0", "f", `{}`), thinking("hm"), text("done")},
			stop:   "tool_use",
		},
		{
			name: "a call cut by the token limit is max_tokens",
			chunks: []canonical.Chunk{
				{ToolCalls: []canonical.ToolCallDelta{{Index: 0, ID: "c", Name: "f", Arguments: `{"a":`}}},
				{FinishReason: canonical.FinishLength},
			},
			blocks: []anthropictest.Block{toolUse("toolu_c", "f", `{"a":`)},
			stop:   "max_tokens",
		},
		{
			name:   "the engine's stop sequence",
			chunks: []canonical.Chunk{{Content: "a"}, {FinishReason: canonical.FinishStop, StopSequence: "###"}},
			blocks: []anthropictest.Block{text("a")},
			stop:   "stop_sequence",
			seq:    ptr("###"),
		},
		{
			name:   "other choices are not written",
			chunks: []canonical.Chunk{{Content: "a"}, {Choice: 1, Content: "b"}},
			blocks: []anthropictest.Block{text("a")},
			stop:   "end_turn",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := fold(t, encodeStream(t, tc.chunks))
			require.Equal(t, tc.blocks, m.Blocks)
			require.Equal(t, tc.stop, m.StopReason)
			require.Equal(t, tc.seq, m.StopSequence)
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestStreamToolCallOutOfOrder(t *testing.T) {
	t.Parallel()
	enc := anthropic.NewStreamEncoder(goldenMeta, 1)
	out := enc.AppendStart(nil)
	var err error
	for _, c := range []canonical.Chunk{
		{ToolCalls: []canonical.ToolCallDelta{{Index: 0, Name: "f", Arguments: `{`}}},
		{ToolCalls: []canonical.ToolCallDelta{{Index: 1, Name: "g", Arguments: `{}`}}},
		{ToolCalls: []canonical.ToolCallDelta{{Index: 0, Arguments: `}`}}},
	} {
		if out, err = enc.AppendChunk(out, &c); err != nil {
			break
		}
	}
	require.ErrorIs(t, err, anthropic.ErrToolCallOrder)
}

func TestStreamError(t *testing.T) {
	t.Parallel()
	enc := anthropic.NewStreamEncoder(goldenMeta, 1)
	out := enc.AppendStart(nil)
	out, err := enc.AppendChunk(out, &canonical.Chunk{Content: "partial"})
	require.NoError(t, err)
	out = anthropic.AppendStreamError(out, &canonical.Error{Kind: canonical.KindBackend, Message: "the backend failed"}, "req-1")
	golden.Assert(t, filepath.Join("testdata", "golden", "error.anthropic.sse"), out)
	m := fold(t, out)
	require.Equal(t, &anthropictest.ErrorBody{Type: "api_error", Message: "the backend failed"}, m.Error)
	require.False(t, m.Complete)
}
