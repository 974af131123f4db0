package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/e2e/internal/cluster"
	"github.com/mindrouter/mindrouter/dataplane/internal/enginesim"
)

// mcpBearer adds an API key to every request of an MCP client.
type mcpBearer struct {
	key  string
	next http.RoundTripper
}

func (b mcpBearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.key)
	return b.next.RoundTrip(r)
}

// searxngReplay serves a recorded SearXNG JSON answer and counts the searches.
func searxngReplay(t *testing.T) *httptest.Server {
	t.Helper()
	body, err := os.ReadFile("testdata/search/searxng.json")
	require.NoError(t, err)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/search" || r.URL.Query().Get("format") != "json" || r.URL.Query().Get("q") == "" {
			http.Error(w, "bad search", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestSearchAndMCP: POST /v1/search and the MCP server's three tools, over
// both MCP transports of the official Go SDK, through a real data plane and
// control plane and the engine simulator; every call is charged to the key's
// user and audited, and a wrong key is refused.
func TestSearchAndMCP(t *testing.T) {
	t.Parallel()
	_, simURL := startSim(t, enginesim.Config{Engine: enginesim.EngineOllama, Models: []enginesim.ModelSpec{{Name: "sim", ContextLength: 4096}}, CompletionTokens: 7})
	provider := searxngReplay(t)
	c := cluster.Start(t, cluster.Options{
		Backends:      []cluster.Backend{{Name: "sim", Engine: "ollama", URL: simURL}},
		DataPlaneArgs: []string{"-search-provider", "searxng", "-search-url", provider.URL, "-search-charge-tokens", "50"},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	before := adminUsed(ctx, t, c)

	// POST /v1/search.
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.DataPlaneURL+"/v1/search", strings.NewReader(`{"query":"mindrouter gateway","max_results":2}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+c.AdminKey)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	raw, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, string(raw))
	var sr struct {
		Provider string `json:"provider"`
		Results  []struct {
			Title, URL, Snippet, Published, Source string
		} `json:"results"`
	}
	require.NoError(t, json.Unmarshal(raw, &sr))
	assert.Equal(t, "searxng", sr.Provider)
	require.Len(t, sr.Results, 2)
	assert.Equal(t, "https://example.edu/mindrouter", sr.Results[0].URL)
	assert.Equal(t, "duckduckgo", sr.Results[0].Source)

	transports := map[string]func(key string) mcp.Transport{
		"streamable": func(key string) mcp.Transport {
			return &mcp.StreamableClientTransport{Endpoint: c.DataPlaneURL + "/mcp", DisableStandaloneSSE: true, MaxRetries: -1,
				HTTPClient: &http.Client{Transport: mcpBearer{key, http.DefaultTransport}}}
		},
		"sse": func(key string) mcp.Transport {
			return &mcp.SSEClientTransport{Endpoint: c.DataPlaneURL + "/mcp/sse",
				HTTPClient: &http.Client{Transport: mcpBearer{key, http.DefaultTransport}}}
		},
	}
	chatTokens := int64(0)
	for name, transport := range transports {
		client := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, nil)
		_, err := client.Connect(ctx, transport("mr2_wrong_key"), nil)
		require.Error(t, err, "%s: a wrong key is refused", name)

		s, err := client.Connect(ctx, transport(c.AdminKey), nil)
		require.NoError(t, err, name)
		tools, err := s.ListTools(ctx, nil)
		require.NoError(t, err, name)
		var names []string
		for _, tl := range tools.Tools {
			names = append(names, tl.Name)
		}
		assert.ElementsMatch(t, []string{"web_search", "list_models", "chat"}, names, name)

		res, err := s.CallTool(ctx, &mcp.CallToolParams{Name: "web_search", Arguments: map[string]any{"query": "mindrouter", "max_results": 1}})
		require.NoError(t, err, name)
		require.False(t, res.IsError, "%s: %v", name, res.Content)
		var found struct {
			Results []struct{ URL string } `json:"results"`
		}
		require.NoError(t, remarshal(res.StructuredContent, &found))
		require.Len(t, found.Results, 1, name)

		res, err = s.CallTool(ctx, &mcp.CallToolParams{Name: "list_models", Arguments: map[string]any{}})
		require.NoError(t, err, name)
		require.False(t, res.IsError, "%s: %v", name, res.Content)
		var models struct {
			Models []struct{ ID string } `json:"models"`
		}
		require.NoError(t, remarshal(res.StructuredContent, &models))
		require.Len(t, models.Models, 1, name)
		assert.True(t, strings.HasPrefix(models.Models[0].ID, "sim"), models.Models[0].ID)

		res, err = s.CallTool(ctx, &mcp.CallToolParams{Name: "chat", Arguments: map[string]any{"model": "sim", "prompt": "mcp probe " + name}})
		require.NoError(t, err, name)
		require.False(t, res.IsError, "%s: %v", name, res.Content)
		var answer struct {
			Answer           string `json:"answer"`
			PromptTokens     int64  `json:"prompt_tokens"`
			CompletionTokens int64  `json:"completion_tokens"`
		}
		require.NoError(t, remarshal(res.StructuredContent, &answer))
		assert.Equal(t, enginesim.DefaultText(7), answer.Answer)
		assert.EqualValues(t, 7, answer.CompletionTokens)
		chatTokens += answer.PromptTokens + answer.CompletionTokens

		res, err = s.CallTool(ctx, &mcp.CallToolParams{Name: "chat", Arguments: map[string]any{"model": "no-such-model", "prompt": "x"}})
		require.NoError(t, err, name)
		assert.True(t, res.IsError, "%s: an unknown model is a tool error", name)
		require.NoError(t, s.Close())
	}

	// Three searches of 50 tokens and two chats are charged to the admin.
	want := before + 3*50 + chatTokens
	require.Eventually(t, func() bool { return adminUsed(ctx, t, c) == want }, 15*time.Second, 100*time.Millisecond,
		"charged %d, want %d", adminUsed(ctx, t, c)-before, want-before)

	// Audited: one search record, and for MCP two searches and four chats
	// (two refused), besides the wrong key's refused initialize.
	bySurface := map[string][]auditRecord{}
	require.Eventually(t, func() bool {
		bySurface = map[string][]auditRecord{}
		for _, r := range auditRecords(t, c, "") {
			if r.StatusCode == http.StatusUnauthorized {
				assert.Equal(t, "mcp", r.Surface, "a refused MCP request is recorded as MCP")
				continue
			}
			bySurface[r.Surface] = append(bySurface[r.Surface], r)
		}
		return len(bySurface["mcp"]) >= 6
	}, 15*time.Second, 200*time.Millisecond)
	require.Len(t, bySurface["search"], 1)
	s := bySurface["search"][0]
	assert.Equal(t, "/v1/search", s.Endpoint)
	assert.Equal(t, "web_search", s.Model)
	assert.Equal(t, "completed", s.Status)
	assert.Equal(t, "admin", s.Username)
	assert.EqualValues(t, 50, s.PromptTokens)
	require.Len(t, bySurface["mcp"], 6)
	var searches, chats, failed int
	for _, r := range bySurface["mcp"] {
		assert.Equal(t, "/mcp", r.Endpoint)
		switch {
		case r.Status != "completed":
			failed++
		case r.Model == "web_search":
			searches++
			assert.EqualValues(t, 50, r.PromptTokens)
		case r.Model == "sim":
			chats++
			assert.EqualValues(t, 7, r.CompletionTokens)
		}
	}
	assert.Equal(t, []int{2, 2, 2}, []int{searches, chats, failed})
	var full struct {
		Record auditRecord `json:"record"`
	}
	status, err := c.AdminJSON(ctx, c.RESTURL, http.MethodGet, "/api/admin/audit/"+s.RequestID, nil, &full)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, "mindrouter gateway", full.Record.PromptText)
	assert.Contains(t, full.Record.ResponseText, "https://example.edu/mindrouter", "the normalised results are the response")
}

func remarshal(in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}
