package ollamatest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ollama/ollama/api"
	"github.com/ollama/ollama/fs/ggml"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// record rewrites testdata/recorded from what the real server answers:
//
//	go test ./internal/ollamatest -run . -record
var record = flag.Bool("record", false, "rewrite testdata/recorded from the real ollama's answers")

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	StopShared()
	os.Exit(code)
}

// The options the recorded non-streaming and streaming chats use: greedy,
// seeded, 8 tokens.
const greedy8 = `{"temperature":0,"seed":1,"num_predict":8}`

func chatBody(content, options string, stream bool) string {
	return fmt.Sprintf(`{"model":"tiny","messages":[{"role":"user","content":%q}],"stream":%t,"options":%s}`, content, stream, options)
}

// do sends a request (POST when body is not empty) and returns the status,
// the Content-Type and the raw body.
func do(t *testing.T, method, url, body string) (int, string, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, r)
	require.NoError(t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header.Get("Content-Type"), b
}

func get(t *testing.T, url string) []byte {
	t.Helper()
	status, _, b := do(t, http.MethodGet, url, "")
	require.Equal(t, http.StatusOK, status, "%s", b)
	return b
}

func post(t *testing.T, url, body string) []byte {
	t.Helper()
	status, _, b := do(t, http.MethodPost, url, body)
	require.Equal(t, http.StatusOK, status, "%s", b)
	return b
}

// lines splits an NDJSON body into its lines, checking each is JSON.
func lines(t *testing.T, b []byte) [][]byte {
	t.Helper()
	var out [][]byte
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := bytes.Clone(sc.Bytes())
		require.True(t, json.Valid(line), "not JSON: %q", line)
		out = append(out, line)
	}
	require.NoError(t, sc.Err())
	return out
}

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	require.NoError(t, json.Unmarshal(b, &v), "%s", b)
	return v
}

// save writes b to testdata/recorded/name when -record is given.
func save(t *testing.T, name string, b []byte) {
	t.Helper()
	if !*record {
		return
	}
	dir := filepath.Join("testdata", "recorded")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, name), b, 0o644))
}

// chatStream is a parsed /api/chat NDJSON stream.
type chatStream struct {
	chunks        []api.ChatResponse
	final         api.ChatResponse
	contentChunks int    // chunks before the final one with non-empty content
	text          string // all content, concatenated
}

func parseChatStream(t *testing.T, b []byte) chatStream {
	t.Helper()
	var s chatStream
	ls := lines(t, b)
	require.NotEmpty(t, ls)
	for i, l := range ls {
		c := decode[api.ChatResponse](t, l)
		s.chunks = append(s.chunks, c)
		s.text += c.Message.Content
		assert.Equal(t, "assistant", c.Message.Role)
		if i < len(ls)-1 {
			require.False(t, c.Done, "chunk %d of %d is done: %s", i, len(ls), l)
			assert.Empty(t, c.DoneReason)
			assert.Zero(t, c.EvalCount)
			if c.Message.Content != "" {
				s.contentChunks++
			}
		}
	}
	s.final = s.chunks[len(s.chunks)-1]
	require.True(t, s.final.Done, "stream ended without done=true: %s", ls[len(ls)-1])
	return s
}

func TestWriteTinyModel(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.gguf"), filepath.Join(dir, "b.gguf")
	require.NoError(t, WriteTinyModel(a, 7))
	require.NoError(t, WriteTinyModel(b, 7))
	ab, err := os.ReadFile(a)
	require.NoError(t, err)
	bb, err := os.ReadFile(b)
	require.NoError(t, err)
	require.Equal(t, ab, bb, "same seed, different files")
	assert.InDelta(t, 470_000, len(ab), 20_000)

	c := filepath.Join(dir, "c.gguf")
	require.NoError(t, WriteTinyModel(c, 8))
	cb, err := os.ReadFile(c)
	require.NoError(t, err)
	assert.NotEqual(t, ab, cb, "different seeds, same file")

	f, err := os.Open(a)
	require.NoError(t, err)
	defer f.Close()
	g, err := ggml.Decode(f, -1)
	require.NoError(t, err)
	kv := g.KV()
	assert.Equal(t, "llama", kv.Architecture())
	assert.EqualValues(t, TinyContextLength, kv.ContextLength())
	assert.EqualValues(t, TinyEmbedding, kv.EmbeddingLength())
	assert.EqualValues(t, TinyBlocks, kv.BlockCount())
	assert.Equal(t, "gpt2", kv.String("tokenizer.ggml.model"))
	assert.Len(t, g.Tensors().Items(), 3+9*TinyBlocks)
}

func TestTags(t *testing.T) {
	s := Shared(t)
	b := get(t, s.URL+"/api/tags")
	save(t, "tags.json", b)
	tags := decode[api.ListResponse](t, b)
	var names []string
	for _, m := range tags.Models {
		names = append(names, m.Name)
		if m.Name == "tiny:latest" {
			assert.Equal(t, "tiny:latest", m.Model)
			assert.Equal(t, "gguf", m.Details.Format)
			assert.Equal(t, "llama", m.Details.Family)
			assert.Greater(t, m.Size, int64(400_000))
			assert.Len(t, m.Digest, 64)
		}
	}
	assert.Contains(t, names, "tiny:latest")
}

func TestShow(t *testing.T) {
	s := Shared(t)
	b := post(t, s.URL+"/api/show", `{"model":"tiny"}`)
	save(t, "show.json", b)
	show := decode[api.ShowResponse](t, b)
	assert.EqualValues(t, 512, show.ModelInfo["llama.context_length"])
	assert.EqualValues(t, 64, show.ModelInfo["llama.embedding_length"])
	assert.Equal(t, "llama", show.ModelInfo["general.architecture"])
	caps := fmt.Sprint(show.Capabilities)
	assert.Contains(t, caps, "completion")
	assert.NotContains(t, caps, "tools", "the tiny template has no .Tools")
	assert.NotContains(t, caps, "embedding", "no pooling_type in the GGUF")
	assert.Contains(t, show.Parameters, "num_ctx")
	assert.Equal(t, DefaultTemplate, show.Template)
}

func TestChat(t *testing.T) {
	s := Shared(t)
	b := post(t, s.URL+"/api/chat", chatBody("hello there", greedy8, false))
	save(t, "chat.json", b)
	r := decode[api.ChatResponse](t, b)
	assert.Equal(t, "tiny", r.Model)
	assert.True(t, r.Done)
	assert.Equal(t, "length", r.DoneReason)
	assert.Equal(t, 8, r.EvalCount)
	assert.Positive(t, r.PromptEvalCount)
	assert.Equal(t, "assistant", r.Message.Role)
	assert.NotEmpty(t, r.Message.Content)
	assert.Positive(t, int64(r.TotalDuration))
}

func TestChatStream(t *testing.T) {
	s := Shared(t)
	status, ctype, b := do(t, http.MethodPost, s.URL+"/api/chat", chatBody("hello there", greedy8, true))
	require.Equal(t, http.StatusOK, status, "%s", b)
	assert.Equal(t, "application/x-ndjson", ctype)
	save(t, "chat_stream.ndjson", b)
	st := parseChatStream(t, b)
	assert.Equal(t, "length", st.final.DoneReason)
	assert.Equal(t, 8, st.final.EvalCount)
	assert.Positive(t, st.final.PromptEvalCount)
	// Observed: with done_reason "length", every generated token is one
	// chunk (the tiny model emits only printable ASCII, so no chunk is held
	// back for an incomplete UTF-8 sequence) and the final chunk has empty
	// content.
	assert.Equal(t, st.final.EvalCount, st.contentChunks)
	assert.Len(t, st.chunks, st.final.EvalCount+1)
	assert.Empty(t, st.final.Message.Content)

	// The same request without streaming gives the same text.
	r := decode[api.ChatResponse](t, post(t, s.URL+"/api/chat", chatBody("hello there", greedy8, false)))
	assert.Equal(t, st.text, r.Message.Content)
	assert.Equal(t, st.final.EvalCount, r.EvalCount)
	assert.Equal(t, st.final.PromptEvalCount, r.PromptEvalCount)
}

// TestChatStreamEOS looks at a stream the model ends itself, with EOS.
func TestChatStreamEOS(t *testing.T) {
	s := Shared(t)
	// Sampled at the default temperature; the seed makes it repeatable.
	var st chatStream
	var b []byte
	for seed := 1; ; seed++ {
		require.Less(t, seed, 30, "no seed gave a short stream ending in EOS")
		b = post(t, s.URL+"/api/chat", chatBody("hello there", fmt.Sprintf(`{"seed":%d,"num_predict":40}`, seed), true))
		st = parseChatStream(t, b)
		if st.final.DoneReason == "stop" && st.final.EvalCount > 3 {
			t.Logf("seed %d: EOS after %d tokens", seed, st.final.EvalCount)
			break
		}
	}
	save(t, "chat_stream_eos.ndjson", b)
	// Observed: EOS counts in eval_count but yields no chunk, so a stream
	// that stops on EOS has eval_count = content chunks + 1.
	assert.Equal(t, st.final.EvalCount, st.contentChunks+1)
	assert.Empty(t, st.final.Message.Content)
}

// TestChatStopSequence: a stop sequence ends the stream with done_reason
// "stop"; the stop text itself is not sent.
func TestChatStopSequence(t *testing.T) {
	s := Shared(t)
	const options = `{"seed":5,"num_predict":12`
	full := parseChatStream(t, post(t, s.URL+"/api/chat", chatBody("hello there", options+"}", true)))
	require.Equal(t, "length", full.final.DoneReason)
	// A character that first shows up a few tokens in.
	var stop string
	for i := 3; i < len(full.text) && stop == ""; i++ {
		if strings.IndexByte(full.text, full.text[i]) == i {
			stop = full.text[i : i+1]
		}
	}
	require.NotEmpty(t, stop, "no usable stop character in %q", full.text)
	b := post(t, s.URL+"/api/chat", chatBody("hello there", fmt.Sprintf(`%s,"stop":[%q]}`, options, stop), true))
	save(t, "chat_stream_stop_sequence.ndjson", b)
	st := parseChatStream(t, b)
	assert.Equal(t, "stop", st.final.DoneReason)
	assert.Equal(t, full.text[:strings.Index(full.text, stop)], st.text)
	// Observed: the token holding the stop text is counted in eval_count but
	// not sent.
	assert.Equal(t, st.final.EvalCount, st.contentChunks+1)
	t.Logf("stop %q in %q: text %q, eval_count %d, content chunks %d", stop, full.text, st.text, st.final.EvalCount, st.contentChunks)
}

func TestGenerateStream(t *testing.T) {
	s := Shared(t)
	status, ctype, b := do(t, http.MethodPost, s.URL+"/api/generate",
		`{"model":"tiny","prompt":"hello","stream":true,"options":{"temperature":0,"seed":1,"num_predict":5}}`)
	require.Equal(t, http.StatusOK, status, "%s", b)
	assert.Equal(t, "application/x-ndjson", ctype)
	save(t, "generate_stream.ndjson", b)
	ls := lines(t, b)
	var chunks int
	for i, l := range ls {
		r := decode[api.GenerateResponse](t, l)
		if i < len(ls)-1 {
			require.False(t, r.Done)
			assert.NotEmpty(t, r.Response)
			chunks++
			continue
		}
		assert.True(t, r.Done)
		assert.Equal(t, "length", r.DoneReason)
		assert.Equal(t, 5, r.EvalCount)
		assert.Equal(t, chunks, r.EvalCount)
		assert.Positive(t, r.PromptEvalCount)
		assert.NotEmpty(t, r.Context, "the final /api/generate chunk carries the context tokens")
		assert.Empty(t, r.Response)
	}
}

func TestGenerate(t *testing.T) {
	s := Shared(t)
	b := post(t, s.URL+"/api/generate", `{"model":"tiny","prompt":"hello","stream":false,"options":{"temperature":0,"seed":1,"num_predict":5}}`)
	save(t, "generate.json", b)
	r := decode[api.GenerateResponse](t, b)
	assert.True(t, r.Done)
	assert.Equal(t, "length", r.DoneReason)
	assert.Equal(t, 5, r.EvalCount)
	assert.NotEmpty(t, r.Response)
}

func TestDeterminism(t *testing.T) {
	s := Shared(t)
	text := func(options string) string {
		r := decode[api.ChatResponse](t, post(t, s.URL+"/api/chat", chatBody("determinism", options, false)))
		require.True(t, r.Done)
		return r.Message.Content
	}
	// Greedy.
	g := text(`{"temperature":0,"seed":1,"num_predict":16}`)
	assert.Equal(t, g, text(`{"temperature":0,"seed":1,"num_predict":16}`))
	// Sampled with a seed.
	a := text(`{"seed":42,"num_predict":16}`)
	assert.Equal(t, a, text(`{"seed":42,"num_predict":16}`))
	assert.NotEqual(t, a, text(`{"seed":43,"num_predict":16}`))
}

func TestPs(t *testing.T) {
	s := Shared(t)
	post(t, s.URL+"/api/chat", chatBody("load me", `{"num_predict":1}`, false))
	b := get(t, s.URL+"/api/ps")
	save(t, "ps.json", b)
	ps := decode[api.ProcessResponse](t, b)
	var found bool
	for _, m := range ps.Models {
		if m.Name == "tiny:latest" {
			found = true
			assert.Equal(t, 256, m.ContextLength, "num_ctx from the Modelfile")
			assert.Zero(t, m.SizeVRAM, "CPU only")
			assert.True(t, m.ExpiresAt.After(time.Now()))
		}
	}
	assert.True(t, found, "tiny:latest not loaded: %s", b)
}

func TestEmbed(t *testing.T) {
	s := Shared(t)
	b := post(t, s.URL+"/api/embed", `{"model":"tiny","input":["hello","world"]}`)
	save(t, "embed.json", b)
	r := decode[api.EmbedResponse](t, b)
	require.Len(t, r.Embeddings, 2)
	for _, e := range r.Embeddings {
		require.Len(t, e, TinyEmbedding)
		var norm float64
		for _, x := range e {
			norm += float64(x) * float64(x)
		}
		assert.InDelta(t, 1, math.Sqrt(norm), 1e-3, "embeddings are L2-normalized")
	}
	assert.Positive(t, r.PromptEvalCount)
}

func TestOpenAIChat(t *testing.T) {
	s := Shared(t)
	b := post(t, s.URL+"/v1/chat/completions",
		`{"model":"tiny","messages":[{"role":"user","content":"hello there"}],"max_tokens":5,"temperature":0,"seed":1}`)
	save(t, "openai_chat.json", b)
	var r struct {
		Object  string
		Choices []struct {
			Message      struct{ Role, Content string }
			FinishReason string `json:"finish_reason"`
		}
		Usage struct {
			PromptTokens     int `json:"prompt_tokens"`
			CompletionTokens int `json:"completion_tokens"`
			TotalTokens      int `json:"total_tokens"`
		}
	}
	require.NoError(t, json.Unmarshal(b, &r))
	assert.Equal(t, "chat.completion", r.Object)
	require.Len(t, r.Choices, 1)
	assert.Equal(t, "length", r.Choices[0].FinishReason)
	assert.Equal(t, "assistant", r.Choices[0].Message.Role)
	assert.Equal(t, 5, r.Usage.CompletionTokens)
	assert.Positive(t, r.Usage.PromptTokens)
	assert.Equal(t, r.Usage.PromptTokens+r.Usage.CompletionTokens, r.Usage.TotalTokens)
}

func TestOpenAIChatStream(t *testing.T) {
	s := Shared(t)
	status, ctype, b := do(t, http.MethodPost, s.URL+"/v1/chat/completions",
		`{"model":"tiny","messages":[{"role":"user","content":"hello there"}],"max_tokens":5,"temperature":0,"seed":1,"stream":true,"stream_options":{"include_usage":true}}`)
	require.Equal(t, http.StatusOK, status, "%s", b)
	assert.Equal(t, "text/event-stream", ctype)
	save(t, "openai_chat_stream.sse", b)

	events := strings.Split(strings.TrimSpace(string(b)), "\n\n")
	require.GreaterOrEqual(t, len(events), 3)
	assert.Equal(t, "data: [DONE]", events[len(events)-1])
	type chunk struct {
		Object  string
		Choices []struct {
			Delta        struct{ Role, Content string }
			FinishReason *string `json:"finish_reason"`
		}
		Usage *struct {
			PromptTokens     int `json:"prompt_tokens"`
			CompletionTokens int `json:"completion_tokens"`
		}
	}
	var contentChunks int
	var finish string
	for i, e := range events[:len(events)-1] {
		data, ok := strings.CutPrefix(e, "data: ")
		require.True(t, ok, "event %d: %q", i, e)
		c := decode[chunk](t, []byte(data))
		assert.Equal(t, "chat.completion.chunk", c.Object)
		if i == len(events)-2 {
			// With include_usage, the last chunk has usage and no choices.
			require.NotNil(t, c.Usage)
			assert.Empty(t, c.Choices)
			assert.Equal(t, 5, c.Usage.CompletionTokens)
			assert.Equal(t, contentChunks, c.Usage.CompletionTokens)
			assert.Positive(t, c.Usage.PromptTokens)
			continue
		}
		require.Len(t, c.Choices, 1)
		assert.Nil(t, c.Usage)
		if c.Choices[0].Delta.Content != "" {
			contentChunks++
		}
		if c.Choices[0].FinishReason != nil {
			finish = *c.Choices[0].FinishReason
		}
	}
	assert.Equal(t, "length", finish)
}

func TestVersion(t *testing.T) {
	s := Shared(t)
	b := get(t, s.URL+"/api/version")
	save(t, "version.json", b)
	v := decode[struct{ Version string }](t, b)
	assert.Equal(t, Version, v.Version)
}

func TestErrors(t *testing.T) {
	s := Shared(t)
	for _, c := range []struct {
		name, path, body string
		status           int
		contains         string
	}{
		{"error_model_not_found.json", "/api/chat", `{"model":"nope","messages":[{"role":"user","content":"hi"}]}`, http.StatusNotFound, "not found"},
		{"error_tools_unsupported.json", "/api/chat", `{"model":"tiny","messages":[{"role":"user","content":"hi"}],"stream":false,"tools":[{"type":"function","function":{"name":"f","description":"d","parameters":{"type":"object","properties":{}}}}]}`, http.StatusBadRequest, "does not support tools"},
		{"error_embed_model_not_found.json", "/api/embed", `{"model":"nope","input":"hi"}`, http.StatusNotFound, "not found"},
		{"openai_error_model_not_found.json", "/v1/chat/completions", `{"model":"nope","messages":[{"role":"user","content":"hi"}]}`, http.StatusNotFound, "not found"},
		{"openai_error_tools_unsupported.json", "/v1/chat/completions", `{"model":"tiny","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{}}}}]}`, http.StatusBadRequest, "does not support tools"},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, _, b := do(t, http.MethodPost, s.URL+c.path, c.body)
			save(t, c.name, b)
			assert.Equal(t, c.status, status, "%s", b)
			if strings.HasPrefix(c.path, "/v1/") {
				// The OpenAI-compatible endpoints answer OpenAI-shaped errors.
				e := decode[struct {
					Error struct{ Message, Type string }
				}](t, b)
				assert.Contains(t, e.Error.Message, c.contains)
				assert.Equal(t, "api_error", e.Error.Type)
				return
			}
			e := decode[struct{ Error string }](t, b)
			assert.Contains(t, e.Error, c.contains)
		})
	}
}

func TestOpenAIModels(t *testing.T) {
	s := Shared(t)
	b := get(t, s.URL+"/v1/models")
	save(t, "openai_models.json", b)
	r := decode[struct {
		Object string
		Data   []struct{ ID, Object string }
	}](t, b)
	assert.Equal(t, "list", r.Object)
	var ids []string
	for _, m := range r.Data {
		ids = append(ids, m.ID)
	}
	assert.Contains(t, ids, "tiny:latest")
}

// TestStart starts a private server with non-default options.
func TestStart(t *testing.T) {
	s := Start(context.Background(), t, Options{ModelName: "other", Seed: 2, NumParallel: 1})
	tags := decode[api.ListResponse](t, get(t, s.URL+"/api/tags"))
	require.Len(t, tags.Models, 1)
	assert.Equal(t, "other:latest", tags.Models[0].Name)
	r := decode[api.ChatResponse](t, post(t, s.URL+"/api/chat",
		`{"model":"other","messages":[{"role":"user","content":"hi"}],"stream":false,"options":{"num_predict":3}}`))
	assert.True(t, r.Done)

	// A second model on the same server.
	require.NoError(t, s.CreateModel(context.Background(), "third", 3))
	tags = decode[api.ListResponse](t, get(t, s.URL+"/api/tags"))
	assert.Len(t, tags.Models, 2)

	s.Stop()
	_, err := http.Get(s.URL + "/")
	assert.Error(t, err, "server still answers after Stop")
}
