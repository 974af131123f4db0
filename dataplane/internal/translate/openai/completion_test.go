package openai_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/golden"
	"github.com/mindrouter/mindrouter/dataplane/internal/translate/openai"
)

func TestDecodeCompletionRequest(t *testing.T) {
	t.Parallel()
	c, err := openai.DecodeCompletionRequest([]byte(`{"model":"m","prompt":["Once","Twice"],"n":2,"echo":true,"temperature":0.2,` +
		`"top_k":5,"stop":"\n","seed":3,"stream":true,"stream_options":{"include_usage":true},"best_of":2,"think":false}`))
	require.NoError(t, err)
	require.Equal(t, []string{"Once", "Twice"}, c.Prompts)
	require.True(t, c.Echo)
	require.Len(t, c.Requests, 2)
	r := c.Requests[1]
	require.Equal(t, []canonical.Message{{Role: canonical.RoleUser, Content: []canonical.Part{canonical.TextPart("Twice")}}}, r.Messages)
	require.Equal(t, int64(openai.DefaultCompletionMaxTokens), r.Sampling.MaxTokens)
	require.Equal(t, 2, r.Sampling.N)
	require.Equal(t, []string{"\n"}, r.Sampling.Stop)
	require.True(t, r.Stream)
	require.True(t, r.IncludeUsage)
	require.Equal(t, &canonical.Thinking{Enabled: false}, r.Think)
	require.NotSame(t, c.Requests[0], c.Requests[1])
	require.Equal(t, "Once", c.Requests[0].Messages[0].Text(), "each prompt keeps its own message")
}

func completionAnswers() (*openai.Completion, []*canonical.Response) {
	c := &openai.Completion{Prompts: []string{"A:", "B:"}, Echo: true,
		Requests: []*canonical.Request{{Sampling: canonical.Sampling{N: 2}}, {Sampling: canonical.Sampling{N: 2}}}}
	answer := func(text string, finish canonical.FinishReason) canonical.Choice {
		return canonical.Choice{Message: canonical.Message{Role: canonical.RoleAssistant, Reasoning: "secret",
			Content: []canonical.Part{canonical.TextPart(text)}}, FinishReason: finish}
	}
	first := &canonical.Response{Choices: []canonical.Choice{answer(" one", "stop"), answer(" uno", "length")}, Usage: &canonical.Usage{Prompt: 3, Completion: 4}}
	first.Choices[1].Index = 1
	second := &canonical.Response{Choices: []canonical.Choice{answer(" two", "stop"), answer(" dos", "stop")}, Usage: &canonical.Usage{Prompt: 2, Completion: 5}}
	second.Choices[1].Index = 1
	return c, []*canonical.Response{first, second}
}

func TestEncodeCompletionGolden(t *testing.T) {
	t.Parallel()
	c, answers := completionAnswers()
	b, err := openai.EncodeCompletion(c, answers, openai.Meta{ID: "cmpl-1", Model: "m", Created: 1700000000})
	require.NoError(t, err)
	golden.Assert(t, "testdata/completion/response.golden", golden.Indent(b))
	require.NotContains(t, string(b), "secret", "reasoning has no place in a text completion")
}

func TestCompletionStreamGolden(t *testing.T) {
	t.Parallel()
	enc := openai.NewCompletionChunkEncoder(openai.Meta{ID: "cmpl-1", Model: "m", Created: 1700000000}, true)
	var out []byte
	enc.StartPrompt(0, "A:")
	for _, c := range []canonical.Chunk{
		{Role: canonical.RoleAssistant, Reasoning: "secret"},
		{Content: " one"}, {Choice: 1, Content: " uno"}, {Content: " more", FinishReason: canonical.FinishStop},
		{Choice: 1, FinishReason: canonical.FinishLength}, {Usage: &canonical.Usage{Prompt: 3, Completion: 4}},
	} {
		out = enc.AppendChunk(out, &c)
	}
	enc.StartPrompt(2, "")
	for _, c := range []canonical.Chunk{{Content: "two", FinishReason: canonical.FinishStop}, {Usage: &canonical.Usage{Prompt: 2, Completion: 1}}} {
		out = enc.AppendChunk(out, &c)
	}
	out = openai.AppendDone(enc.AppendUsage(out))
	golden.Assert(t, "testdata/completion/stream.golden", out)
	require.NotContains(t, string(out), "secret")

	quiet := openai.NewCompletionChunkEncoder(openai.Meta{ID: "x"}, false)
	quiet.AppendChunk(nil, &canonical.Chunk{Usage: &canonical.Usage{Prompt: 1}})
	require.Empty(t, quiet.AppendUsage(nil), "usage only when the client asked for it")
}

func FuzzDecodeCompletionRequest(f *testing.F) {
	f.Add([]byte(`{"model":"m","prompt":"Once upon","max_tokens":5,"echo":true}`))
	f.Add([]byte(`{"model":"m","prompt":["a","b"],"n":2,"best_of":2,"stream":true,"stream_options":{"include_usage":true}}`))
	f.Add([]byte(`{"model":"m","prompt":[1,2],"suffix":"x"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		c, err := openai.DecodeCompletionRequest(body)
		if err != nil {
			checkRefusal(t, err)
			return
		}
		if len(c.Requests) == 0 || len(c.Requests) != len(c.Prompts) || len(c.Requests) > openai.MaxCompletionPrompts {
			t.Fatalf("accepted %d prompts as %d requests", len(c.Prompts), len(c.Requests))
		}
		for i, r := range c.Requests {
			if len(r.Messages) != 1 || r.Messages[0].Text() != c.Prompts[i] || r.Sampling.MaxTokens < 1 {
				t.Fatalf("prompt %d became %+v", i, r)
			}
			if _, err := openai.EncodeUpstreamRequest(r, openai.UpstreamOptions{Model: "m", Stream: r.Stream}); err != nil {
				t.Fatal(err)
			}
		}
	})
}
