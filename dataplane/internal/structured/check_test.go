package structured_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/structured"
)

const citySchema = `{"type":"object","properties":{"city":{"type":"string"},"temp":{"type":"number"}},"required":["city","temp"],"additionalProperties":false}`

func answer(text string, finish canonical.FinishReason) *canonical.Response {
	m := canonical.Message{Role: canonical.RoleAssistant}
	if text != "" {
		m.Content = []canonical.Part{canonical.TextPart(text)}
	}
	return &canonical.Response{Choices: []canonical.Choice{{Message: m, FinishReason: finish}}}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	object := &canonical.ResponseFormat{Type: canonical.FormatJSONObject}
	schema := &canonical.ResponseFormat{Type: canonical.FormatJSONSchema, Name: "w", Schema: json.RawMessage(citySchema)}
	tests := []struct {
		name    string
		format  *canonical.ResponseFormat
		text    string
		finish  canonical.FinishReason
		wantErr string
	}{
		{"object ok", object, ` {"a":1} `, canonical.FinishStop, ""},
		{"object: array", object, `[1,2]`, canonical.FinishStop, "not a JSON object"},
		{"object: prose", object, `Sure! Here it is`, canonical.FinishStop, "not valid JSON"},
		{"object: cut off", object, `{"a":`, canonical.FinishLength, "cut off at the token limit"},
		{"empty after reasoning ate the budget", object, ``, canonical.FinishLength, "reasoning may have used the whole budget"},
		{"empty", object, ``, canonical.FinishStop, "no structured output (empty content)"},
		{"schema ok", schema, `{"city":"Oslo","temp":-3.5}`, canonical.FinishStop, ""},
		{"schema: wrong type", schema, `{"city":"Oslo","temp":"cold"}`, canonical.FinishStop, "does not match the JSON Schema: at '/temp'"},
		{"schema: missing property", schema, `{"city":"Oslo"}`, canonical.FinishStop, "missing property 'temp'"},
		{"schema: extra property", schema, `{"city":"Oslo","temp":1,"x":2}`, canonical.FinishStop, "additional properties 'x' not allowed"},
		{"schema without schema text acts as object", &canonical.ResponseFormat{Type: canonical.FormatJSONSchema}, `{}`, canonical.FinishStop, ""},
		{"free text is not checked", nil, `anything`, canonical.FinishStop, ""},
		{"text format is not checked", &canonical.ResponseFormat{Type: canonical.FormatText}, `anything`, canonical.FinishStop, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := structured.New(tc.format)
			require.NoError(t, err)
			err = c.Response(answer(tc.text, tc.finish))
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			ce := canonical.AsError(err)
			require.Equal(t, canonical.KindUnprocessable, ce.Kind)
			require.Equal(t, canonical.CodeInvalidOutput, ce.Code)
			require.Contains(t, ce.Message, tc.wantErr)
			require.NotContains(t, ce.Message, "mem:///")
		})
	}
}

func TestToolCallsAreNotChecked(t *testing.T) {
	t.Parallel()
	c, err := structured.New(&canonical.ResponseFormat{Type: canonical.FormatJSONObject})
	require.NoError(t, err)
	resp := answer("", canonical.FinishToolCalls)
	resp.Choices[0].Message.ToolCalls = []canonical.ToolCall{{ID: "c", Name: "f", Arguments: "{}"}}
	require.NoError(t, c.Response(resp))

	two := &canonical.Response{Choices: []canonical.Choice{answer(`{}`, "stop").Choices[0], answer(`x`, "stop").Choices[0]}}
	two.Choices[1].Index = 1
	require.ErrorContains(t, c.Response(two), "choice 1: ")
}

func TestBadSchemas(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, schema, want string }{
		{"not JSON", `{"type":`, "not valid"},
		{"wrong keyword type", `{"type":5}`, "not valid"},
		{"file reference is never read", `{"$ref":"file:///etc/passwd"}`, "external schema references are not allowed"},
		{"remote reference is never fetched", `{"$ref":"http://169.254.169.254/latest"}`, "external schema references are not allowed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := structured.New(&canonical.ResponseFormat{Type: canonical.FormatJSONSchema, Schema: json.RawMessage(tc.schema)})
			ce := canonical.AsError(err)
			require.Equal(t, canonical.KindInvalidRequest, ce.Kind)
			require.Equal(t, "response_format.json_schema.schema", ce.Param)
			require.Contains(t, ce.Message, tc.want)
		})
	}
	// A standard meta-schema reference is fine: the validator embeds them.
	_, err := structured.New(&canonical.ResponseFormat{Type: canonical.FormatJSONSchema,
		Schema: json.RawMessage(`{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object"}`)})
	require.NoError(t, err)
}
