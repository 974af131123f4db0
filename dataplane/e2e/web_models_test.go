package e2e

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/e2e/internal/cluster"
	"github.com/mindrouter/mindrouter/dataplane/internal/enginesim"
)

// TestWebModelsInBrowser: in headless Chromium an admin overrides a model's
// capabilities and creates an alias on the console's Models page; the REST
// API and the admin-action log agree, the openai-go SDK's request to the
// alias is served, an auditor sees the page with no change control and a
// student gets 403. axe-core in light and dark mode, screenshots.
func TestWebModelsInBrowser(t *testing.T) {
	t.Parallel()
	_, simURL := startSim(t, enginesim.Config{Engine: enginesim.EngineVLLM, CompletionTokens: 6,
		Models: []enginesim.ModelSpec{{Name: "sim-chat", ContextLength: 8192}}})
	c := cluster.Start(t, cluster.Options{Backends: []cluster.Backend{{Name: "sim", Engine: "vllm", URL: simURL}}})
	createUser(t, c, "ada", "admin")
	createUser(t, c, "audrey", "auditor")
	createUser(t, c, "sam", "student")
	const pw = "correct horse battery"

	a := newPage(t, c.DataPlaneURL)
	a.signIn("ada", pw, "/admin")
	a.open("/admin/models")
	require.Contains(t, a.text("#models + div table"), "sim-chat")
	a.submit(`#models + div table a[href^="/admin/models/override"]`, "#edit-override")
	assert.Equal(t, "Model sim-chat", a.text("h1"))
	a.fill("section[aria-labelledby=edit-override] form", map[string]string{"vision": "on", "thinking": "off",
		"context_length": "4096", "display_name": "Sim <chat>"})
	require.Contains(t, a.text("main"), "override was saved", a.text("main"))
	assert.Contains(t, a.text("#models + div table"), `vision (image input) on, thinking off, context 4096, shown as "Sim <chat>"`)

	a.fill("section[aria-labelledby=set-alias] form", map[string]string{"name": "campus-default", "targets": "sim-chat", "description": "the default"})
	require.Contains(t, a.text("main"), "The alias was saved", a.text("main"))
	assert.Contains(t, a.text("#aliases + div table"), "campus-default")
	a.check("admin-models")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var overrides []struct {
		Model         string `json:"model"`
		Vision        *bool  `json:"vision"`
		ContextLength string `json:"context_length"`
	}
	adminGet(t, c, "/api/admin/models/overrides", &overrides)
	require.Len(t, overrides, 1)
	require.NotNil(t, overrides[0].Vision)
	assert.True(t, *overrides[0].Vision)
	var actions struct {
		Actions []struct {
			Actor  string `json:"actor"`
			Action string `json:"action"`
		} `json:"actions"`
	}
	adminGet(t, c, "/api/admin/audit/admin-actions", &actions)
	byAda := 0
	for _, x := range actions.Actions {
		if x.Actor == "ada" {
			byAda++
		}
	}
	assert.GreaterOrEqual(t, byAda, 2, "the override and the alias are in the admin-action log as ada's: %+v", actions.Actions)

	var resp *openai.ChatCompletion
	client := openaiClient(c, c.AdminKey)
	require.Eventually(t, func() bool {
		var err error
		resp, err = client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "campus-default",
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hello")}})
		return err == nil
	}, 20*time.Second, 200*time.Millisecond, "the alias is served once the catalog push lands")
	assert.NotEmpty(t, resp.Choices)

	au := newPage(t, c.DataPlaneURL)
	au.signIn("audrey", pw, "/admin")
	for _, path := range []string{"/admin/models", "/admin/models/override?model=sim-chat"} {
		au.open(path)
		controls := eval[int](au, `document.querySelectorAll("main form[method=post] button:not([disabled]), main form:not([method=get]) button").length`)
		assert.Zero(t, controls, "an auditor finds no enabled change control on %s", path)
		assert.Contains(t, au.text("main"), "Read-only", path)
	}
	au.open("/admin/models")
	au.check("auditor-models")

	st := newPage(t, c.DataPlaneURL)
	st.signIn("sam", pw, "/dashboard")
	assert.Equal(t, http.StatusForbidden, st.status("/admin/models"))
	assert.Equal(t, http.StatusForbidden, st.status("/admin/models/override?model=sim-chat"))
}
