package tokens_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/tokens"
)

func TestPrompt(t *testing.T) {
	t.Parallel()
	text := func(s string) []canonical.Part { return []canonical.Part{canonical.TextPart(s)} }
	tests := []struct {
		name string
		req  canonical.Request
		want int64
	}{
		{"one short message", canonical.Request{Messages: []canonical.Message{{Role: canonical.RoleUser, Content: text("12345678")}}}, 3 + 4 + 2},
		{"an image", canonical.Request{Messages: []canonical.Message{{Role: canonical.RoleUser, Content: []canonical.Part{
			{Type: canonical.PartImage, Image: &canonical.Image{Data: "xxxx"}}}}}}, 3 + 4 + 765},
		{"tools and calls count", canonical.Request{
			Messages: []canonical.Message{{Role: canonical.RoleAssistant, ToolCalls: []canonical.ToolCall{{Name: "abcd", Arguments: "{}"}}}},
			Tools:    []canonical.Tool{{Name: "ab", Parameters: []byte(`{"type":"object"}`)}}}, 3 + 4 + 7}, // 25 characters
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, tokens.Prompt(&tc.req))
		})
	}
}

func TestCounter(t *testing.T) {
	t.Parallel()
	var c tokens.Counter
	c.Add(&canonical.Chunk{Content: "hello", Reasoning: "abc"})
	c.Add(&canonical.Chunk{ToolCalls: []canonical.ToolCallDelta{{Name: "f", Arguments: "{}"}}})
	require.Equal(t, int64(3), c.Tokens())
	c.AddResponse(&canonical.Response{Choices: []canonical.Choice{{Message: canonical.Message{Content: []canonical.Part{canonical.TextPart("1234")}}}}})
	require.Equal(t, int64(4), c.Tokens())
	require.Zero(t, tokens.FromChars(0))
	require.Equal(t, int64(1), tokens.FromChars(1))
}
