package openai_test

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	"github.com/mindrouter/mindrouter/dataplane/internal/cpclient/cpclienttest"
	"github.com/mindrouter/mindrouter/dataplane/internal/enginesim"
	"github.com/mindrouter/mindrouter/dataplane/internal/relay"
)

func (g *gateway) postTo(t *testing.T, path, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, g.url+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer mr2_key")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { _ = resp.Body.Close() })
	return resp
}

func decodeJSON(t *testing.T, resp *http.Response, v any) {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	require.NoError(t, json.Unmarshal(b, v), string(b))
}

// poolingSim serves an embedding model.
func poolingSim(t *testing.T, id int64, eng enginesim.Engine) cpclienttest.Backend {
	t.Helper()
	s := enginesim.New(enginesim.Config{Engine: eng, Models: []enginesim.ModelSpec{{Name: "bge", Capabilities: []string{"embedding"}, EmbeddingDim: 6}}})
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	e := relay.EngineOllama
	if eng == enginesim.EngineVLLM {
		e = relay.EngineVLLM
	}
	return cpclienttest.Backend{ID: id, Name: string(eng), URL: hs.URL, Engine: e, Model: "bge"}
}

type textCompletion struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	Model   string `json:"model"`
	Choices []struct {
		Text         string          `json:"text"`
		Index        int             `json:"index"`
		Logprobs     json.RawMessage `json:"logprobs"`
		FinishReason *string         `json:"finish_reason"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens     int64 `json:"prompt_tokens"`
		CompletionTokens int64 `json:"completion_tokens"`
		TotalTokens      int64 `json:"total_tokens"`
	} `json:"usage"`
}

func TestCompletions(t *testing.T) {
	t.Parallel()
	for _, eng := range []enginesim.Engine{enginesim.EngineOllama, enginesim.EngineVLLM} {
		t.Run(string(eng), func(t *testing.T) {
			t.Parallel()
			g := newGateway(t, sim(t, 1, eng, func(enginesim.Request) *enginesim.Reply {
				return &enginesim.Reply{Thinking: "hidden", Content: "Paris is the capital."}
			}))
			var out textCompletion
			decodeJSON(t, g.postTo(t, "/v1/completions", `{"model":"llama3.2","prompt":"The capital of France is","max_tokens":40}`), &out)
			admit := g.fake.Admits()[0]
			require.Equal(t, "cmpl-"+admit.RequestID, out.ID)
			require.Equal(t, "text_completion", out.Object)
			require.Equal(t, int64(1700000000), out.Created)
			require.Equal(t, "llama3.2", out.Model)
			require.Len(t, out.Choices, 1)
			require.Equal(t, "Paris is the capital.", out.Choices[0].Text, "text only: no reasoning")
			require.Equal(t, "null", string(out.Choices[0].Logprobs))
			require.Equal(t, "stop", *out.Choices[0].FinishReason)
			require.Positive(t, out.Usage.CompletionTokens)
			require.Equal(t, out.Usage.PromptTokens+out.Usage.CompletionTokens, out.Usage.TotalTokens)
			require.Equal(t, relay.OperationCompletion, admit.Operation)
			require.Equal(t, int64(40), admit.MaxOutputTokens)

			// max_tokens defaults to 16, as in OpenAI's and vLLM's legacy API.
			decodeJSON(t, g.postTo(t, "/v1/completions", `{"model":"llama3.2","prompt":["x"]}`), &out)
			require.Equal(t, int64(16), g.fake.Admits()[1].MaxOutputTokens)
		})
	}
}

func TestCompletionsSeveralPromptsAndEcho(t *testing.T) {
	t.Parallel()
	g := newGateway(t, sim(t, 1, enginesim.EngineVLLM, func(r enginesim.Request) *enginesim.Reply {
		return &enginesim.Reply{Content: "<" + r.Messages[len(r.Messages)-1].Content + ">"}
	}))
	var out textCompletion
	decodeJSON(t, g.postTo(t, "/v1/completions", `{"model":"m","prompt":["a","b"],"n":2,"echo":true}`), &out)
	require.Len(t, out.Choices, 4)
	for i, want := range []string{"a<a>", "a<a>", "b<b>", "b<b>"} {
		require.Equal(t, i, out.Choices[i].Index)
		require.Equal(t, want, out.Choices[i].Text)
	}
	admits := g.fake.Admits()
	require.Len(t, admits, 2, "one lease per prompt")
	require.Equal(t, admits[0].RequestID+"-1", admits[1].RequestID, "each lease has its own request id")

	resp := g.postTo(t, "/v1/completions", `{"model":"m","prompt":["a","b"],"echo":true,"stream":true,"stream_options":{"include_usage":true}}`)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	events := readStream(t, resp)
	require.Equal(t, "[DONE]", events[len(events)-1].data)
	texts := map[float64]string{}
	usages := 0
	for _, ev := range events[:len(events)-1] {
		require.Equal(t, "text_completion", ev.obj["object"])
		require.True(t, strings.HasPrefix(ev.obj["id"].(string), "cmpl-"))
		if u, ok := ev.obj["usage"].(map[string]any); ok {
			usages++
			require.Empty(t, ev.obj["choices"])
			require.Positive(t, u["completion_tokens"])
			continue
		}
		ch := ev.obj["choices"].([]any)[0].(map[string]any)
		require.Nil(t, ch["logprobs"])
		texts[ch["index"].(float64)] += ch["text"].(string)
	}
	require.Equal(t, map[float64]string{0: "a<a>", 1: "b<b>"}, texts)
	require.Equal(t, 1, usages, "usage once, summed over the prompts")
}

func TestCompletionsRefusals(t *testing.T) {
	t.Parallel()
	g := newGateway(t, sim(t, 1, enginesim.EngineVLLM, nil))
	for _, tc := range []struct{ body, param, msg string }{
		{`{"model":"m"}`, "prompt", "prompt is required"},
		{`{"model":"m","prompt":[1,2,3]}`, "prompt", "token-id prompts are not supported"},
		{`{"model":"m","prompt":"x","suffix":"y"}`, "suffix", "not supported"},
		{`{"model":"m","prompt":"x","best_of":3}`, "best_of", "not supported"},
		{`{"model":"m","prompt":"x","temperature":3}`, "temperature", "between 0 and 2"},
		{`{"prompt":"x"}`, "model", "model parameter"},
	} {
		resp := g.postTo(t, "/v1/completions", tc.body)
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, tc.body)
		e := decodeError(t, resp)
		require.Equal(t, "invalid_request_error", e.Error.Type)
		require.Equal(t, tc.param, *e.Error.Param)
		require.Contains(t, e.Error.Message, tc.msg)
	}
	require.Empty(t, g.fake.Admits())
}

func TestEmbeddings(t *testing.T) {
	t.Parallel()
	for _, eng := range []enginesim.Engine{enginesim.EngineOllama, enginesim.EngineVLLM} {
		t.Run(string(eng), func(t *testing.T) {
			t.Parallel()
			g := newGateway(t, poolingSim(t, 1, eng))
			type embeddings struct {
				Object string `json:"object"`
				Data   []struct {
					Object    string          `json:"object"`
					Index     int             `json:"index"`
					Embedding json.RawMessage `json:"embedding"`
				} `json:"data"`
				Model string `json:"model"`
				Usage struct {
					PromptTokens int64 `json:"prompt_tokens"`
					TotalTokens  int64 `json:"total_tokens"`
				} `json:"usage"`
			}
			var floats, b64 embeddings
			decodeJSON(t, g.postTo(t, "/v1/embeddings", `{"model":"nomic","input":["one","two two"]}`), &floats)
			require.Equal(t, "list", floats.Object)
			require.Equal(t, "nomic", floats.Model, "clients see the name they asked for")
			require.Len(t, floats.Data, 2)
			require.Equal(t, 1, floats.Data[1].Index)
			require.Equal(t, "embedding", floats.Data[0].Object)
			require.Positive(t, floats.Usage.PromptTokens)
			require.Equal(t, floats.Usage.PromptTokens, floats.Usage.TotalTokens)
			require.Equal(t, relay.OperationEmbedding, g.fake.Admits()[0].Operation)

			decodeJSON(t, g.postTo(t, "/v1/embeddings", `{"model":"nomic","input":["one","two two"],"encoding_format":"base64"}`), &b64)
			for i := range floats.Data {
				var want []float32
				require.NoError(t, json.Unmarshal(floats.Data[i].Embedding, &want))
				require.Len(t, want, 6)
				var s string
				require.NoError(t, json.Unmarshal(b64.Data[i].Embedding, &s))
				raw, err := base64.StdEncoding.DecodeString(s)
				require.NoError(t, err)
				got := make([]float32, len(raw)/4)
				for k := range got {
					got[k] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*k:]))
				}
				require.Equal(t, want, got, "base64 holds the same float32s")
			}
		})
	}
}

func TestRerankAndScoreEndpoints(t *testing.T) {
	t.Parallel()
	g := newGateway(t, poolingSim(t, 1, enginesim.EngineVLLM))
	var rr struct {
		ID      string `json:"id"`
		Model   string `json:"model"`
		Results []struct {
			Index    int `json:"index"`
			Document *struct {
				Text string `json:"text"`
			} `json:"document"`
			RelevanceScore float64 `json:"relevance_score"`
		} `json:"results"`
		Usage struct {
			TotalTokens int64 `json:"total_tokens"`
		} `json:"usage"`
	}
	decodeJSON(t, g.postTo(t, "/v1/rerank", `{"model":"rr","query":"capital of France","documents":["bananas","Paris is the capital of France",{"text":"France"}],"top_n":2}`), &rr)
	require.True(t, strings.HasPrefix(rr.ID, "rerank-"))
	require.Equal(t, "rr", rr.Model)
	require.Len(t, rr.Results, 2)
	require.GreaterOrEqual(t, rr.Results[0].RelevanceScore, rr.Results[1].RelevanceScore)
	require.NotNil(t, rr.Results[0].Document)
	require.Positive(t, rr.Usage.TotalTokens)

	var bare map[string]any
	decodeJSON(t, g.postTo(t, "/v1/rerank", `{"model":"rr","query":"q","documents":["a"],"return_documents":false}`), &bare)
	require.NotContains(t, bare["results"].([]any)[0], "document")

	var sc struct {
		Object string `json:"object"`
		Data   []struct {
			Index  int     `json:"index"`
			Object string  `json:"object"`
			Score  float64 `json:"score"`
		} `json:"data"`
	}
	decodeJSON(t, g.postTo(t, "/v1/score", `{"model":"rr","text_1":"capital","text_2":["Paris","bananas"]}`), &sc)
	require.Equal(t, "list", sc.Object)
	require.Len(t, sc.Data, 2)
	require.Equal(t, "score", sc.Data[1].Object)

	resp := g.postTo(t, "/v1/score", `{"model":"rr","text_1":["a","b"],"text_2":["a","b","c"]}`)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)

	g.fake.FailAdmits(cpclienttest.Refusal(codes.FailedPrecondition, relay.ReasonCapabilityUnsupported,
		"rerank is only available on vLLM backends", 0))
	resp = g.postTo(t, "/v1/rerank", `{"model":"llama3.2","query":"q","documents":["a"]}`)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	e := decodeError(t, resp)
	require.Equal(t, "invalid_request_error", e.Error.Type)
	require.Equal(t, "rerank is only available on vLLM backends", e.Error.Message)
	require.Equal(t, "capability_unsupported", *e.Error.Code)
}

func TestStructuredOutputErrors(t *testing.T) {
	t.Parallel()
	g := newGateway(t, sim(t, 1, enginesim.EngineVLLM, func(enginesim.Request) *enginesim.Reply {
		return &enginesim.Reply{Content: "not json at all"}
	}))
	resp := g.post(t, `{"model":"m","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_object"}}`)
	require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode)
	e := decodeError(t, resp)
	require.Equal(t, "invalid_response_error", e.Error.Type)
	require.Equal(t, "invalid_structured_output", *e.Error.Code)
	require.Contains(t, e.Error.Message, "not valid JSON")
}

// TestToolChoiceMissingOnOllama: Ollama cannot force a tool call, so when a
// model served by it answers tool_choice required with text twice, the
// client gets a 502 tool_call_missing envelope, streamed or not (a held-back
// stream has sent nothing yet).
func TestToolChoiceMissingOnOllama(t *testing.T) {
	t.Parallel()
	g := newGateway(t, sim(t, 1, enginesim.EngineOllama, func(enginesim.Request) *enginesim.Reply {
		return &enginesim.Reply{Content: "I prefer to talk"}
	}))
	const tools = `"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}]`
	for _, stream := range []string{"false", "true"} {
		resp := g.post(t, `{"model":"m","messages":[{"role":"user","content":"x"}],`+tools+`,"tool_choice":"required","stream":`+stream+`}`)
		require.Equal(t, http.StatusBadGateway, resp.StatusCode, "stream=%s", stream)
		e := decodeError(t, resp)
		require.Equal(t, "server_error", e.Error.Type)
		require.Equal(t, "tool_call_missing", *e.Error.Code)
		require.Equal(t, "tool_choice", *e.Error.Param)
		require.Contains(t, e.Error.Message, "tool_choice requires a tool call")
	}
}
