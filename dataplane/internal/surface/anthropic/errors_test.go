package anthropic_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	"github.com/mindrouter/mindrouter/dataplane/internal/cpclient/cpclienttest"
	"github.com/mindrouter/mindrouter/dataplane/internal/enginesim"
	"github.com/mindrouter/mindrouter/dataplane/internal/relay"
	surface "github.com/mindrouter/mindrouter/dataplane/internal/surface/anthropic"
	"github.com/mindrouter/mindrouter/dataplane/internal/tokens"
	"github.com/mindrouter/mindrouter/dataplane/internal/translate/anthropic"
)

func TestRefusals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		err        error
		status     int
		typ        string
		retryAfter string
	}{
		{"invalid key", cpclienttest.Refusal(codes.Unauthenticated, relay.ReasonInvalidCredential, "Invalid API key", 0),
			401, "authentication_error", ""},
		{"forbidden", cpclienttest.Refusal(codes.PermissionDenied, relay.ReasonPermissionDenied, "no", 0),
			403, "permission_error", ""},
		{"unknown model", cpclienttest.Refusal(codes.NotFound, relay.ReasonModelNotFound, "The model `x` does not exist", 0),
			404, "not_found_error", ""},
		{"context", cpclienttest.Refusal(codes.InvalidArgument, relay.ReasonContextExceeded, "too long", 0),
			400, "invalid_request_error", ""},
		{"rpm", cpclienttest.Refusal(codes.ResourceExhausted, relay.ReasonRateLimited, "Rate limit exceeded", 1500*time.Millisecond),
			429, "rate_limit_error", "2"},
		{"quota", cpclienttest.Refusal(codes.ResourceExhausted, relay.ReasonQuotaExhausted, "Token quota exceeded", time.Hour),
			429, "rate_limit_error", "3600"},
		{"queue full", cpclienttest.Refusal(codes.ResourceExhausted, relay.ReasonQueueFull, "queue full", 0),
			529, "overloaded_error", "1"},
		{"queue timeout", cpclienttest.Refusal(codes.Unavailable, relay.ReasonQueueTimeout, "waited", 10*time.Second),
			529, "overloaded_error", "10"},
		{"database", cpclienttest.Refusal(codes.Unavailable, relay.ReasonDatabaseUnavailable, "the gateway's database is unavailable; retry shortly", 5*time.Second),
			529, "overloaded_error", "5"},
	}
	_, b := sim(t, 1, enginesim.EngineVLLM, enginesim.Config{})
	g := newGateway(t, surface.Config{}, b)
	for _, tc := range tests {
		for _, stream := range []string{"false", "true"} {
			t.Run(tc.name+" stream="+stream, func(t *testing.T) {
				g.fake.FailAdmits(tc.err)
				resp := g.post(t, `{"model":"x","max_tokens":5,"stream":`+stream+`,"messages":[{"role":"user","content":"x"}]}`)
				require.Equal(t, tc.status, resp.StatusCode, "refusals before the stream starts keep their status")
				require.Equal(t, tc.retryAfter, resp.Header.Get("Retry-After"))
				require.Equal(t, tc.typ, decodeError(t, resp).Error.Type)
			})
		}
	}
}

func TestFailuresWithoutTheClientsFault(t *testing.T) {
	t.Parallel()
	t.Run("backend refusal passes through", func(t *testing.T) {
		t.Parallel()
		_, b := sim(t, 1, enginesim.EngineVLLM, enginesim.Config{Script: func(enginesim.Request) *enginesim.Reply {
			return &enginesim.Reply{Status: 400, ErrorMessage: "max_tokens is too large"}
		}})
		g := newGateway(t, surface.Config{}, b)
		resp := g.post(t, hello+`}`)
		require.Equal(t, http.StatusBadRequest, resp.StatusCode)
		e := decodeError(t, resp)
		require.Equal(t, "invalid_request_error", e.Error.Type)
		require.Equal(t, "max_tokens is too large", e.Error.Message)
	})
	t.Run("all backends failing is 502 api_error", func(t *testing.T) {
		t.Parallel()
		down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) }))
		t.Cleanup(down.Close)
		g := newGateway(t, surface.Config{}, cpclienttest.Backend{ID: 1, URL: down.URL, Engine: relay.EngineVLLM})
		resp := g.post(t, hello+`,"stream":true}`)
		require.Equal(t, http.StatusBadGateway, resp.StatusCode)
		require.Equal(t, "api_error", decodeError(t, resp).Error.Type)
	})
	t.Run("control plane down is 529 with Retry-After", func(t *testing.T) {
		t.Parallel()
		g := newGateway(t, surface.Config{})
		g.fake.Stop()
		resp := g.post(t, hello+`}`)
		require.Equal(t, anthropic.StatusOverloaded, resp.StatusCode)
		require.Equal(t, "2", resp.Header.Get("Retry-After"))
		require.Equal(t, "overloaded_error", decodeError(t, resp).Error.Type)
	})
}

func TestBadInputNeverReachesTheControlPlane(t *testing.T) {
	t.Parallel()
	_, b := sim(t, 1, enginesim.EngineVLLM, enginesim.Config{})
	g := newGateway(t, surface.Config{}, b)
	tests := []struct {
		name, path, body string
		header           []string
		status           int
		typ              string
	}{
		{"no key", "/anthropic/v1/messages", hello + `}`, []string{"X-Api-Key", ""}, 401, "authentication_error"},
		{"no max_tokens", "/anthropic/v1/messages", `{"model":"m","messages":[{"role":"user","content":"x"}]}`, nil, 400, "invalid_request_error"},
		{"bad JSON", "/v1/messages", `{"model":`, nil, 400, "invalid_request_error"},
		{"bad role", "/v1/messages", `{"model":"m","max_tokens":1,"messages":[{"role":"tool","content":"y"}]}`, nil, 400, "invalid_request_error"},
		{"too large", "/v1/messages", `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"` + strings.Repeat("x", 1<<20) + `"}]}`, nil, 413, "request_too_large"},
		{"unknown route under /anthropic", "/anthropic/v1/complete", `{}`, nil, 404, "not_found_error"},
		{"count_tokens without key", "/anthropic/v1/messages/count_tokens", hello + `}`, []string{"X-Api-Key", ""}, 401, "authentication_error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := g.do(t, http.MethodPost, tc.path, tc.body, tc.header...)
			require.Equal(t, tc.status, resp.StatusCode)
			require.Equal(t, tc.typ, decodeError(t, resp).Error.Type, "Anthropic's envelope, not OpenAI's, on /v1/messages too")
		})
	}
	require.Empty(t, g.fake.Admits())
	resp := g.post(t, hello+`}`, "X-Api-Key", "", "Authorization", "Bearer mr2_other", "Anthropic-Version", "")
	require.Equal(t, http.StatusOK, resp.StatusCode, "a Bearer token is accepted too, and anthropic-version is optional")
	require.Equal(t, "mr2_other", g.fake.Admits()[0].Credential)
}

func TestCountTokens(t *testing.T) {
	t.Parallel()
	g := newGateway(t, surface.Config{})
	g.fake.SetKeys("mr2_key")
	g.fake.SetModels(relay.ModelInfo{Name: "tiny:latest"})
	body := `{"model":"tiny","system":"be brief","messages":[{"role":"user","content":"hello there"}],` +
		`"tools":[{"name":"f","input_schema":{"type":"object"}}]}`
	for _, path := range []string{"/anthropic/v1/messages/count_tokens", "/v1/messages/count_tokens"} {
		resp := g.do(t, http.MethodPost, path, body)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		var out map[string]int64
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
		req, err := anthropic.DecodeCountTokensRequest([]byte(body))
		require.NoError(t, err)
		require.Equal(t, map[string]int64{"input_tokens": tokens.Prompt(req)}, out, "the relay's own estimate")
	}

	resp := g.do(t, http.MethodPost, "/anthropic/v1/messages/count_tokens", strings.Replace(body, `"tiny"`, `"nope"`, 1))
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	e := decodeError(t, resp)
	require.Equal(t, "not_found_error", e.Error.Type)
	require.Equal(t, "model: nope", e.Error.Message)

	resp = g.do(t, http.MethodPost, "/anthropic/v1/messages/count_tokens", body, "X-Api-Key", "mr2_bad")
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "count_tokens checks the key")
	require.Equal(t, "authentication_error", decodeError(t, resp).Error.Type)
	require.Empty(t, g.fake.Admits(), "counting admits nothing")
}

func TestModels(t *testing.T) {
	t.Parallel()
	g := newGateway(t, surface.Config{})
	g.fake.SetModels(
		relay.ModelInfo{Name: "old", Created: 100, ContextLength: 4096},
		relay.ModelInfo{Name: "Qwen/Qwen3-8B", Created: 300},
		relay.ModelInfo{Name: "new", Created: 300},
	)
	get := func(path string, header ...string) (int, string) {
		resp := g.do(t, http.MethodGet, path, "", header...)
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	created := func(sec int64) string { return time.Unix(sec, 0).UTC().Format(time.RFC3339) }
	model := func(id string, sec int64) string {
		return `{"type":"model","id":"` + id + `","display_name":"` + id + `","created_at":"` + created(sec) + `"}`
	}
	status, body := get("/anthropic/v1/models")
	require.Equal(t, http.StatusOK, status)
	require.JSONEq(t, `{"data":[`+model("Qwen/Qwen3-8B", 300)+`,`+model("new", 300)+`,`+strings.TrimSuffix(model("old", 100), "}")+`,"max_input_tokens":4096,"max_tokens":4096}],
		"has_more":false,"first_id":"Qwen/Qwen3-8B","last_id":"old"}`, body, "newest first")

	status, body = get("/anthropic/v1/models?limit=1&after_id=new")
	require.Equal(t, http.StatusOK, status)
	require.JSONEq(t, `{"data":[`+strings.TrimSuffix(model("old", 100), "}")+`,"max_input_tokens":4096,"max_tokens":4096}],"has_more":false,"first_id":"old","last_id":"old"}`, body)

	status, body = get("/anthropic/v1/models/Qwen/Qwen3-8B")
	require.Equal(t, http.StatusOK, status)
	require.JSONEq(t, model("Qwen/Qwen3-8B", 300), body)

	status, _ = get("/anthropic/v1/models/nope")
	require.Equal(t, http.StatusNotFound, status)
	status, _ = get("/anthropic/v1/models?limit=0")
	require.Equal(t, http.StatusBadRequest, status)
	status, _ = get("/anthropic/v1/models", "X-Api-Key", "")
	require.Equal(t, http.StatusUnauthorized, status)
	require.Equal(t, 1, g.fake.ListModelsCalls(), "the catalog is cached per key")
}

func TestCredential(t *testing.T) {
	t.Parallel()
	tests := []struct{ apiKey, auth, want string }{
		{"abc", "", "abc"},
		{" abc ", "Bearer xyz", "abc"},
		{"", "Bearer xyz", "xyz"},
		{"", "bearer  xyz ", "xyz"},
		{"", "Basic xyz", ""},
		{"", "", ""},
	}
	for _, tc := range tests {
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		r.Header.Set("X-Api-Key", tc.apiKey)
		r.Header.Set("Authorization", tc.auth)
		require.Equal(t, tc.want, surface.Credential(r), "%+v", tc)
	}
}

// TestRetryAfterRounding keeps the header in whole seconds, at least 1.
func TestRetryAfterRounding(t *testing.T) {
	t.Parallel()
	_, b := sim(t, 1, enginesim.EngineVLLM, enginesim.Config{})
	g := newGateway(t, surface.Config{}, b)
	g.fake.FailAdmits(cpclienttest.Refusal(codes.ResourceExhausted, relay.ReasonRateLimited, "slow", 100*time.Millisecond))
	resp := g.post(t, hello+`}`)
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	secs, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	require.NoError(t, err)
	require.Equal(t, 1, secs)
}
