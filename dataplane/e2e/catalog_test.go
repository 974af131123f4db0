package e2e

import (
	"context"
	"encoding/base64"
	"net/http"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go"
	"github.com/openai/openai-go/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/e2e/internal/cluster"
)

// TestCatalogAliasesAndOverrides: an admin defines an alias and an override
// through the data plane's admin gateway; the next request, on the data plane
// already running, sees both — the alias is listed on every surface and
// served (answering with the alias's name, as OpenAI does), and the override
// changes admission's capability check.
func TestCatalogAliasesAndOverrides(t *testing.T) {
	t.Parallel()
	c := cluster.Start(t, cluster.Options{Backends: oaiSims(t)})
	client := openaiClient(c, c.AdminKey)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// Warm the data plane's catalog cache first: the change must reach it.
	_, err := client.Models.List(ctx)
	require.NoError(t, err, c.Logs())

	code, err := c.AdminJSON(ctx, c.DataPlaneURL, http.MethodPut, "/api/admin/models/aliases/default-chat",
		map[string]any{"targets": []string{oaiOllamaChat, oaiVLLMChat}, "description": "whatever chats best"}, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	code, err = c.AdminJSON(ctx, c.DataPlaneURL, http.MethodPut, "/api/admin/models/overrides/"+oaiVLLMChat,
		map[string]any{"vision": false, "display_name": "Qwen3 VL (no images here)"}, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)

	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		page, err := client.Models.List(ctx)
		if !assert.NoError(ct, err) {
			return
		}
		var alias *openai.Model
		for i := range page.Data {
			if page.Data[i].ID == "default-chat" {
				alias = &page.Data[i]
			}
		}
		if assert.NotNil(ct, alias, "the alias is listed") {
			assert.Contains(ct, alias.RawJSON(), `"is_alias":true`)
			assert.Contains(ct, alias.RawJSON(), `"alias_targets":["`+oaiOllamaChat+`","`+oaiVLLMChat+`"]`)
		}
	}, 10*time.Second, 100*time.Millisecond, "the catalog push reaches the data plane")

	resp, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "default-chat", Messages: oaiUser("hello")})
	require.NoError(t, err, c.Logs())
	assert.Equal(t, "default-chat", resp.Model, "the answer names the model the client asked for")
	require.NotEmpty(t, resp.Choices[0].Message.Content)

	var tags struct {
		Models []struct {
			Name        string `json:"name"`
			IsAlias     bool   `json:"is_alias"`
			AliasTarget string `json:"alias_target"`
		} `json:"models"`
	}
	code, err = c.AdminJSON(ctx, c.DataPlaneURL, http.MethodGet, "/api/tags", nil, &tags)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	found := false
	for _, m := range tags.Models {
		if m.Name == "default-chat" {
			found = true
			assert.True(t, m.IsAlias)
			assert.Equal(t, oaiOllamaChat, m.AliasTarget)
		}
	}
	assert.True(t, found, "/api/tags lists the alias")

	aclient := anthropicClient(c, c.AdminKey, false)
	models, err := aclient.Models.List(ctx, anthropic.ModelListParams{})
	require.NoError(t, err, c.Logs())
	names := map[string]string{}
	for _, m := range models.Data {
		names[m.ID] = m.DisplayName
	}
	assert.Contains(t, names, "default-chat")
	assert.Equal(t, "Qwen3 VL (no images here)", names[oaiVLLMChat], "the display name override")

	// The vLLM model lost vision by override: an image is refused at admission.
	b64 := base64.StdEncoding.EncodeToString(oaiPNG(t))
	_, err = client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: oaiVLLMChat, Messages: []openai.ChatCompletionMessageParamUnion{
		openai.UserMessage([]openai.ChatCompletionContentPartUnionParam{
			openai.TextContentPart("IMAGE: what is this?"),
			openai.ImageContentPart(openai.ChatCompletionContentPartImageImageURLParam{URL: "data:image/png;base64," + b64}),
		}),
	}})
	apiErr := oaiAPIError(t, err)
	assert.Equal(t, http.StatusBadRequest, apiErr.StatusCode)
	assert.Contains(t, apiErr.Message, "image input")

	code, err = c.AdminJSON(ctx, c.DataPlaneURL, http.MethodDelete, "/api/admin/models/aliases/default-chat", nil, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		_, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "default-chat", Messages: oaiUser("hello")})
		var apiErr *openai.Error
		if assert.ErrorAs(ct, err, &apiErr) {
			assert.Equal(ct, http.StatusNotFound, apiErr.StatusCode)
		}
	}, 10*time.Second, 100*time.Millisecond)
}
