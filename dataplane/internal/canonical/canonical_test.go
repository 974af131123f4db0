package canonical_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
)

func text(role canonical.Role, s string) canonical.Message {
	return canonical.Message{Role: role, Content: []canonical.Part{canonical.TextPart(s)}}
}

func TestSystemFirst(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   []canonical.Message
		want []canonical.Message
	}{
		{
			name: "no system message",
			in:   []canonical.Message{text(canonical.RoleUser, "hi")},
			want: []canonical.Message{text(canonical.RoleUser, "hi")},
		},
		{
			name: "one leading system message is kept",
			in:   []canonical.Message{text(canonical.RoleSystem, "be brief"), text(canonical.RoleUser, "hi")},
			want: []canonical.Message{text(canonical.RoleSystem, "be brief"), text(canonical.RoleUser, "hi")},
		},
		{
			name: "scattered system messages merge first",
			in: []canonical.Message{
				text(canonical.RoleUser, "hi"), text(canonical.RoleSystem, "a"),
				text(canonical.RoleAssistant, "yo"), text(canonical.RoleSystem, "b"),
			},
			want: []canonical.Message{
				text(canonical.RoleSystem, "a\n\nb"), text(canonical.RoleUser, "hi"), text(canonical.RoleAssistant, "yo"),
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req := &canonical.Request{Messages: tc.in}
			require.Equal(t, tc.want, req.SystemFirst())
		})
	}
}

func TestMessageText(t *testing.T) {
	t.Parallel()
	m := canonical.Message{Content: []canonical.Part{
		canonical.TextPart("look"), {Type: canonical.PartImage, Image: &canonical.Image{Data: "AAAA"}}, canonical.TextPart("here"),
	}}
	require.Equal(t, "look\nhere", m.Text())
	require.True(t, m.HasImages())
	require.Equal(t, "data:image/png;base64,AAAA", m.Content[1].Image.DataURL())
}

func TestToolName(t *testing.T) {
	t.Parallel()
	req := &canonical.Request{Messages: []canonical.Message{
		{Role: canonical.RoleAssistant, ToolCalls: []canonical.ToolCall{{ID: "c1", Name: "get_weather"}}},
		{Role: canonical.RoleTool, ToolCallID: "c1"},
	}}
	require.Equal(t, "get_weather", req.ToolName("c1"))
	require.Empty(t, req.ToolName("nope"))
}

func TestAccumulator(t *testing.T) {
	t.Parallel()
	var a canonical.Accumulator
	for _, c := range []canonical.Chunk{
		{Role: canonical.RoleAssistant, Reasoning: "thinking "},
		{Reasoning: "hard", Content: "Hel"},
		{Content: "lo"},
		{ToolCalls: []canonical.ToolCallDelta{{Index: 1, ID: "b", Name: "g", Arguments: "{}"}}},
		{ToolCalls: []canonical.ToolCallDelta{{Index: 0, ID: "a", Name: "f", Arguments: `{"x"`}}},
		{ToolCalls: []canonical.ToolCallDelta{{Index: 0, Arguments: `:1}`}}},
		{FinishReason: canonical.FinishToolCalls},
		{Usage: &canonical.Usage{Prompt: 3, Completion: 4}},
	} {
		a.Add(c)
	}
	want := &canonical.Response{
		Choices: []canonical.Choice{{
			Message: canonical.Message{
				Role: canonical.RoleAssistant, Content: []canonical.Part{canonical.TextPart("Hello")}, Reasoning: "thinking hard",
				ToolCalls: []canonical.ToolCall{{ID: "a", Name: "f", Arguments: `{"x":1}`}, {ID: "b", Name: "g", Arguments: "{}"}},
			},
			FinishReason: canonical.FinishToolCalls,
		}},
		Usage: &canonical.Usage{Prompt: 3, Completion: 4},
	}
	require.Equal(t, want, a.Response())
	require.Equal(t, int64(7), a.Response().Usage.Total())
}

type selfDescribing struct{}

func (selfDescribing) Error() string { return "refused" }
func (selfDescribing) Canonical() *canonical.Error {
	return &canonical.Error{Kind: canonical.KindQuotaExhausted, Message: "quota", Wait: time.Minute}
}

func TestAsError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want canonical.ErrorKind
	}{
		{"canonical error wrapped", fmt.Errorf("ctx: %w", canonical.Invalid("model", "bad")), canonical.KindInvalidRequest},
		{"canonicaler wrapped", fmt.Errorf("ctx: %w", selfDescribing{}), canonical.KindQuotaExhausted},
		{"cancelled", fmt.Errorf("x: %w", context.Canceled), canonical.KindCancelled},
		{"deadline", context.DeadlineExceeded, canonical.KindUnavailable},
		{"unknown", errors.New("boom"), canonical.KindInternal},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := canonical.AsError(tc.err)
			require.Equal(t, tc.want, got.Kind)
			require.NotEmpty(t, got.Message)
		})
	}
	require.Nil(t, canonical.AsError(nil))
	require.Equal(t, "Internal server error", canonical.AsError(errors.New("secret detail")).Message)
	require.Equal(t, time.Minute, canonical.AsError(selfDescribing{}).RetryAfter())
}

func TestChunkEmpty(t *testing.T) {
	t.Parallel()
	require.True(t, (&canonical.Chunk{Role: canonical.RoleAssistant}).Empty())
	require.False(t, (&canonical.Chunk{Usage: &canonical.Usage{}}).Empty())
	require.False(t, (&canonical.Chunk{FinishReason: canonical.FinishStop}).Empty())
}

func TestEcho(t *testing.T) {
	t.Parallel()
	require.Equal(t, "llama3", canonical.Echo("llama3"))
	exact := strings.Repeat("a", canonical.MaxEcho)
	require.Equal(t, exact, canonical.Echo(exact))
	long := strings.Repeat("é", 1<<20) // two bytes a rune: the cut must not split one
	got := canonical.Echo(long)
	require.True(t, utf8.ValidString(got))
	require.LessOrEqual(t, len(got), canonical.MaxEcho+32)
	require.Contains(t, got, "(2097152 bytes)")
}

func TestBodyError(t *testing.T) {
	t.Parallel()
	e := canonical.BodyError(&http.MaxBytesError{Limit: 100})
	require.Equal(t, canonical.KindTooLarge, e.Kind)
	require.Contains(t, e.Message, "100 bytes")
	slow := &canonical.Error{Kind: canonical.KindInvalidRequest, Status: 408}
	require.Same(t, slow, canonical.BodyError(fmt.Errorf("read: %w", slow)))
	require.Equal(t, canonical.KindInvalidRequest, canonical.BodyError(io.ErrUnexpectedEOF).Kind)
}
