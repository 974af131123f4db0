package enginesim_test

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/enginesim"
	"github.com/mindrouter/mindrouter/dataplane/internal/structured"
)

// schemaCases are JSON Schemas the simulator must satisfy, checked with the
// data plane's own validator.
var schemaCases = []struct {
	name   string
	schema string
}{
	{"flat required", `{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer","minimum":18},"ok":{"type":"boolean"}},"required":["name","age","ok"],"additionalProperties":false}`},
	{"enum and const", `{"type":"object","properties":{"color":{"enum":["red","green"]},"v":{"const":3}},"required":["color","v"]}`},
	{"arrays", `{"type":"object","properties":{"tags":{"type":"array","items":{"type":"string","minLength":12},"minItems":3,"uniqueItems":true},"n":{"type":"array","items":{"type":"number","exclusiveMinimum":5,"maximum":9}}},"required":["tags","n"]}`},
	{"nested", `{"type":"object","properties":{"user":{"type":"object","properties":{"address":{"type":"object","properties":{"zip":{"type":"string","maxLength":3}},"required":["zip"]}},"required":["address"]}},"required":["user"]}`},
	{"defs and ref", `{"$defs":{"step":{"type":"object","properties":{"explanation":{"type":"string"},"output":{"type":"string"}},"required":["explanation","output"],"additionalProperties":false}},"type":"object","properties":{"steps":{"type":"array","items":{"$ref":"#/$defs/step"}},"final_answer":{"type":"string"}},"required":["steps","final_answer"],"additionalProperties":false}`},
	{"nullable and anyOf", `{"type":"object","properties":{"a":{"type":["string","null"]},"b":{"anyOf":[{"type":"integer","multipleOf":7,"minimum":10},{"type":"null"}]}},"required":["a","b"]}`},
	{"formats", `{"type":"object","properties":{"when":{"type":"string","format":"date-time"},"mail":{"type":"string","format":"email"},"id":{"type":"string","format":"uuid"}},"required":["when","mail","id"]}`},
	{"allOf", `{"allOf":[{"type":"object","properties":{"x":{"type":"integer"}},"required":["x"]},{"properties":{"y":{"type":"string"}},"required":["y"]}]}`},
	{"recursive", `{"$defs":{"node":{"type":"object","properties":{"v":{"type":"integer"},"kids":{"type":"array","items":{"$ref":"#/$defs/node"}}},"required":["v","kids"]}},"$ref":"#/$defs/node"}`},
	{"array root", `{"type":"array","items":{"type":"integer","maximum":-4},"minItems":2,"maxItems":2}`},
}

func TestStructuredOutputMatchesSchema(t *testing.T) {
	for _, engine := range []string{"vllm", "ollama"} {
		for _, tc := range schemaCases {
			t.Run(engine+"/"+tc.name, func(t *testing.T) {
				content := constrainedReply(t, engine, json.RawMessage(tc.schema))
				check, err := structured.New(&canonical.ResponseFormat{Type: canonical.FormatJSONSchema, Schema: json.RawMessage(tc.schema)})
				require.NoError(t, err)
				require.Nil(t, check.Text(content, canonical.FinishStop), "reply %s", content)
			})
		}
	}
}

func TestStructuredOutputJSONObject(t *testing.T) {
	for _, tc := range []struct{ engine, format string }{
		{"vllm", `{"type":"json_object"}`}, {"ollama", `"json"`},
	} {
		t.Run(tc.engine, func(t *testing.T) {
			content := constrainedReply(t, tc.engine, json.RawMessage(tc.format))
			var v map[string]any
			require.NoError(t, json.Unmarshal([]byte(content), &v), "reply %s", content)
		})
	}
}

func TestFreeTextUnchangedWithTextFormat(t *testing.T) {
	content := constrainedReply(t, "vllm", json.RawMessage(`{"type":"text"}`))
	assert.Equal(t, enginesim.DefaultText(16), content)
}

// constrainedReply asks engine's simulator for a non-streamed reply under
// format: a schema (wrapped as each engine expects) or a raw format value.
func constrainedReply(t *testing.T, engine string, format json.RawMessage) string {
	t.Helper()
	var f map[string]any
	isSchema := json.Unmarshal(format, &f) == nil && f["type"] != "json_object" && f["type"] != "text"
	msgs := []map[string]any{{"role": "user", "content": "answer in JSON"}}
	if engine == "ollama" {
		_, url := start(t, enginesim.Config{Models: []enginesim.ModelSpec{{Name: "llama3.2"}}})
		resp := post(t, url+"/api/chat", map[string]any{"model": "llama3.2", "messages": msgs, "stream": false, "format": format})
		require.Equal(t, http.StatusOK, resp.StatusCode)
		var out struct {
			Message struct{ Content string } `json:"message"`
		}
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
		return out.Message.Content
	}
	rf := any(format)
	if isSchema {
		rf = map[string]any{"type": "json_schema", "json_schema": map[string]any{"name": "out", "schema": format}}
	}
	_, url := start(t, vllmCfg(enginesim.Config{}))
	resp := post(t, url+"/v1/chat/completions", map[string]any{"model": "Qwen/Qwen3-8B", "messages": msgs, "response_format": rf})
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	var out struct {
		Choices []struct {
			Message struct{ Content string } `json:"message"`
		} `json:"choices"`
	}
	require.NoError(t, json.Unmarshal(body, &out))
	require.Len(t, out.Choices, 1)
	return out.Choices[0].Message.Content
}
