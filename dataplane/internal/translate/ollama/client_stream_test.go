package ollama_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/golden"
	"github.com/mindrouter/mindrouter/dataplane/internal/stream"
	"github.com/mindrouter/mindrouter/dataplane/internal/translate/ollama"
	"github.com/mindrouter/mindrouter/dataplane/internal/translate/openai"
)

// engineStream is one engine's recorded or transcribed stream.
type engineStream struct {
	engine, name, path string
}

// engineStreams lists the streams of both engines the client goldens start
// from: Ollama NDJSON (whole tool calls, thinking) and vLLM SSE (argument
// fragments, reasoning, several choices).
func engineStreams(t *testing.T) []engineStream {
	t.Helper()
	var out []engineStream
	for _, g := range []struct{ engine, glob, suffix string }{
		{"ollama", "testdata/stream/*.ndjson", ".ndjson"},
		{"ollama", "../../enginesim/testdata/recorded/ollama_chat_*stream.ndjson", ".ndjson"},
		{"vllm", "../openai/testdata/stream/*.vllm.sse", ".vllm.sse"},
		{"vllm", "../../enginesim/testdata/recorded/vllm_chat_*stream.sse", ".sse"},
	} {
		files, err := filepath.Glob(g.glob)
		require.NoError(t, err)
		require.NotEmpty(t, files, g.glob)
		for _, f := range files {
			name := strings.TrimSuffix(filepath.Base(f), g.suffix)
			name = strings.TrimPrefix(strings.TrimPrefix(name, "ollama_"), "vllm_")
			out = append(out, engineStream{engine: g.engine, name: name, path: f})
		}
	}
	return out
}

// decodeEngineStream turns an engine's stream into the canonical chunks the
// engine package would emit (empty ones dropped, as the relay drops them).
func decodeEngineStream(t *testing.T, s engineStream) []canonical.Chunk {
	t.Helper()
	if s.engine == "ollama" {
		return decodeStream(t, s.path)
	}
	f, err := os.Open(s.path)
	require.NoError(t, err)
	defer f.Close()
	r := stream.NewSSEReader(f, 0)
	var dec openai.ChunkDecoder
	var out []canonical.Chunk
	for {
		ev, err := r.Next()
		if errors.Is(err, io.EOF) || string(ev.Data) == "[DONE]" {
			return out
		}
		require.NoError(t, err)
		chunks, err := dec.Decode(ev.Data)
		require.NoError(t, err)
		for _, c := range chunks {
			if !c.Empty() {
				out = append(out, c)
			}
		}
	}
}

var streamTimings = ollama.Timings{Total: 5 * time.Second, Load: time.Second, PromptEval: 2 * time.Second, Eval: 2 * time.Second}

func encodeStream(chunks []canonical.Chunk, enc *ollama.ChunkEncoder) []byte {
	var out []byte
	for i := range chunks {
		out = enc.AppendChunk(out, &chunks[i])
	}
	enc.SetTimings(streamTimings)
	return enc.AppendEnd(out)
}

// TestClientStreamGolden translates every engine stream into the NDJSON
// lines an Ollama client gets from /api/chat and from /api/generate, byte
// for byte: engine → canonical → Ollama client.
func TestClientStreamGolden(t *testing.T) {
	t.Parallel()
	meta := ollama.Meta{Model: "qwen3", CreatedAt: "2025-01-01T00:00:00Z"}
	for _, s := range engineStreams(t) {
		t.Run(s.engine+"/"+s.name, func(t *testing.T) {
			t.Parallel()
			chunks := decodeEngineStream(t, s)
			base := "testdata/client/stream/" + s.engine + "_" + s.name
			chat := encodeStream(chunks, ollama.NewChunkEncoder(meta))
			golden.Assert(t, base+".chat.ndjson", chat)
			generate := encodeStream(chunks, ollama.NewGenerateChunkEncoder(meta))
			golden.Assert(t, base+".generate.ndjson", generate)

			// The stream folds into the same answer as the engine's chunks.
			var acc canonical.Accumulator
			for _, c := range chunks {
				acc.Add(c)
			}
			want := acc.Response().Choices[0].Message
			lines := ndjsonLines(t, chat)
			var text, thinking strings.Builder
			var calls []map[string]any
			for i, l := range lines {
				require.Equal(t, i == len(lines)-1, l["done"], "only the last line is done")
				msg := l["message"].(map[string]any)
				require.Equal(t, "assistant", msg["role"])
				text.WriteString(msg["content"].(string))
				if th, ok := msg["thinking"].(string); ok {
					thinking.WriteString(th)
				}
				for _, c := range asList(msg["tool_calls"]) {
					calls = append(calls, c.(map[string]any))
				}
			}
			require.Equal(t, want.Text(), text.String())
			require.Equal(t, want.Reasoning, thinking.String())
			require.Len(t, calls, len(want.ToolCalls))
			for i, c := range calls {
				fn := c["function"].(map[string]any)
				require.Equal(t, want.ToolCalls[i].ID, c["id"])
				require.Equal(t, want.ToolCalls[i].Name, fn["name"])
				require.EqualValues(t, i, fn["index"])
				args, err := json.Marshal(fn["arguments"])
				require.NoError(t, err)
				require.JSONEq(t, want.ToolCalls[i].Arguments, string(args), "arguments arrive whole, as an object")
			}
		})
	}
}

// TestClientStreamShapes: an Ollama engine's stream, passed through the
// canonical model, reaches an Ollama client with the same keys on every
// line as real Ollama 0.17.4 wrote them.
func TestClientStreamShapes(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"ollama_chat_stream", "ollama_chat_thinking_stream", "ollama_chat_tools_stream"} {
		path := "../../enginesim/testdata/recorded/" + name + ".ndjson"
		raw, err := os.ReadFile(path)
		require.NoError(t, err)
		want := ndjsonLines(t, raw)
		chunks := decodeStream(t, path)
		got := ndjsonLines(t, encodeStream(chunks, ollama.NewChunkEncoder(ollama.Meta{Model: "m", CreatedAt: "2025-01-01T00:00:00Z"})))
		require.Equal(t, keySets(want), keySets(got), name)
	}
	// Generate lines: the recorded real stream, minus "context" (token ids the
	// gateway cannot know).
	raw, err := os.ReadFile("../../enginesim/testdata/recorded/ollama_generate_stream.ndjson")
	require.NoError(t, err)
	want := ndjsonLines(t, raw)
	delete(want[len(want)-1], "context")
	chunks := []canonical.Chunk{{Role: canonical.RoleAssistant, Content: "]"}, {Content: "]"},
		{FinishReason: canonical.FinishLength, Usage: &canonical.Usage{Prompt: 18, Completion: 4}}}
	got := ndjsonLines(t, encodeStream(chunks, ollama.NewGenerateChunkEncoder(ollama.Meta{Model: "m", CreatedAt: "x"})))
	require.Equal(t, keySets(want), keySets(got))
	require.Equal(t, "length", got[len(got)-1]["done_reason"])
}

func ndjsonLines(t *testing.T, b []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.SplitSeq(strings.TrimSuffix(string(b), "\n"), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), line)
		out = append(out, m)
	}
	return out
}

// keySets lists each line's keys, message keys included, in order.
func keySets(lines []map[string]any) [][]string {
	out := make([][]string, 0, len(lines))
	for _, l := range lines {
		keys := slices.Sorted(maps.Keys(l))
		if msg, ok := l["message"].(map[string]any); ok {
			for _, k := range slices.Sorted(maps.Keys(msg)) {
				keys = append(keys, "message."+k)
			}
		}
		out = append(out, keys)
	}
	return out
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

func compact(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, json.Compact(&buf, b))
	return buf.Bytes()
}
