package search_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/cpclient"
	"github.com/mindrouter/mindrouter/dataplane/internal/relay"
	"github.com/mindrouter/mindrouter/dataplane/internal/search"
	"github.com/mindrouter/mindrouter/dataplane/internal/translate/openai"
)

// fakeCP is an in-memory control plane: it grants every admission and keeps
// what it was asked.
type fakeCP struct {
	mu       sync.Mutex
	refuse   error
	admits   []relay.AdmitRequest
	releases []relay.Release
}

func (f *fakeCP) Admit(_ context.Context, req relay.AdmitRequest) (relay.Grant, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.refuse != nil {
		return relay.Grant{}, f.refuse
	}
	f.admits = append(f.admits, req)
	return relay.Grant{Lease: relay.Lease{ID: "lease-" + req.RequestID, UserID: 9, Username: "ada"}}, nil
}

func (f *fakeCP) Release(_ context.Context, rel relay.Release) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.releases = append(f.releases, rel)
	return nil
}

// provider serves a fixture the way the real provider's API does, and checks
// the request it gets.
func provider(t *testing.T, fixture string, check func(*http.Request)) *httptest.Server {
	t.Helper()
	body, err := os.ReadFile(fixture)
	require.NoError(t, err)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		check(r)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestBraveNormalised(t *testing.T) {
	t.Parallel()
	srv := provider(t, "testdata/brave.json", func(r *http.Request) {
		assert.Equal(t, "/res/v1/web/search", r.URL.Path)
		assert.Equal(t, "mindrouter gateway", r.URL.Query().Get("q"))
		assert.Equal(t, "2", r.URL.Query().Get("count"))
		assert.Equal(t, "brave-secret", r.Header.Get("X-Subscription-Token"))
	})
	b := &search.Brave{URL: srv.URL + "/res/v1/web/search", APIKey: "brave-secret", Client: srv.Client()}
	got, err := b.Search(t.Context(), "mindrouter gateway", 2)
	require.NoError(t, err)
	assert.Equal(t, []search.Result{
		{Title: "MindRouter — LLM gateway", URL: "https://example.edu/mindrouter",
			Snippet: "One front door for many <strong>Ollama</strong> and vLLM servers.", Published: "2026-03-03T10:00:00", Source: "brave"},
		{Title: "Fair-share scheduling", URL: "https://example.org/wdrr", Snippet: "Weighted deficit round robin explained.", Source: "brave"},
	}, got)
}

func TestSearXNGNormalised(t *testing.T) {
	t.Parallel()
	srv := provider(t, "testdata/searxng.json", func(r *http.Request) {
		assert.Equal(t, "/search", r.URL.Path)
		assert.Equal(t, "json", r.URL.Query().Get("format"))
		assert.Equal(t, "mindrouter gateway", r.URL.Query().Get("q"))
	})
	s := &search.SearXNG{URL: srv.URL + "/", Client: srv.Client()}
	got, err := s.Search(t.Context(), "mindrouter gateway", 10)
	require.NoError(t, err)
	assert.Equal(t, []search.Result{
		{Title: "MindRouter — LLM gateway", URL: "https://example.edu/mindrouter",
			Snippet: "One front door for many Ollama and vLLM servers.", Published: "2026-03-03T10:00:00", Source: "duckduckgo"},
		{Title: "Fair-share scheduling", URL: "https://example.org/wdrr", Snippet: "Weighted deficit round robin explained.", Source: "wikipedia"},
	}, got)
}

// serve runs the /v1/search handler over p and returns the status, the
// headers and the body of one request.
func serve(t *testing.T, cp *fakeCP, p search.Provider, cfg search.Config, key, body string) (int, http.Header, []byte) {
	t.Helper()
	svc, err := search.New(cp, p, cfg, nil, nil)
	require.NoError(t, err)
	h := svc.Handler(func(r *http.Request) string {
		return strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	}, func(w http.ResponseWriter, _ *http.Request, err error) {
		er := openai.EncodeError(canonical.AsError(err))
		if er.RetryAfter > 0 {
			w.Header().Set("Retry-After", "7")
		}
		w.WriteHeader(er.Status)
		_, _ = w.Write(er.Body)
	})
	req := httptest.NewRequest(http.MethodPost, "/v1/search", strings.NewReader(body))
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Header(), rec.Body.Bytes()
}

func TestSearchAdmitsChargesAndAnswers(t *testing.T) {
	t.Parallel()
	srv := provider(t, "testdata/searxng.json", func(*http.Request) {})
	cp := &fakeCP{}
	code, _, body := serve(t, cp, &search.SearXNG{URL: srv.URL, Client: srv.Client()}, search.Config{Charge: 75},
		"mr2_key", `{"query":"  mindrouter gateway ","max_results":1}`)
	require.Equal(t, http.StatusOK, code, string(body))
	var res search.Response
	require.NoError(t, json.Unmarshal(body, &res))
	assert.Equal(t, "mindrouter gateway", res.Query)
	assert.Equal(t, "searxng", res.Provider)
	assert.Equal(t, 1, res.TotalResults)
	require.Len(t, res.Results, 1)

	require.Len(t, cp.admits, 1)
	a := cp.admits[0]
	assert.Equal(t, relay.OperationSearch, a.Operation)
	assert.Equal(t, "web_search", a.Model)
	assert.Equal(t, "mr2_key", a.Credential)
	assert.Equal(t, int64(75), a.PromptTokensEstimate)
	require.Len(t, cp.releases, 1)
	assert.Equal(t, relay.OutcomeSuccess, cp.releases[0].Outcome)
	assert.Equal(t, int64(75), cp.releases[0].Usage.Prompt, "a search is charged the configured tokens")
}

func TestSearchProviderErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		status     int
		retryAfter string
		slow       bool
		wantStatus int
		wantMsg    string
		wantRetry  bool
	}{
		{name: "bad key", status: http.StatusUnauthorized, wantStatus: http.StatusBadGateway, wantMsg: "search provider brave refused"},
		{name: "forbidden", status: http.StatusForbidden, wantStatus: http.StatusBadGateway, wantMsg: "brave"},
		{name: "rate limited", status: http.StatusTooManyRequests, retryAfter: "7", wantStatus: http.StatusTooManyRequests, wantMsg: "rate limiting", wantRetry: true},
		{name: "provider down", status: http.StatusInternalServerError, wantStatus: http.StatusBadGateway, wantMsg: "HTTP 500"},
		{name: "timeout", slow: true, wantStatus: http.StatusGatewayTimeout, wantMsg: "did not answer in time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			done := make(chan struct{})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.slow {
					select {
					case <-r.Context().Done():
					case <-done:
					}
					return
				}
				if tt.retryAfter != "" {
					w.Header().Set("Retry-After", tt.retryAfter)
				}
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(`{"type":"ErrorResponse","error":{"code":"X","detail":"no"}}`))
			}))
			t.Cleanup(func() { close(done); srv.Close() })
			cp := &fakeCP{}
			timeout := 30 * time.Second
			if tt.slow {
				timeout = 200 * time.Millisecond
			}
			code, h, body := serve(t, cp, &search.Brave{URL: srv.URL, APIKey: "k", Client: srv.Client()},
				search.Config{Timeout: timeout}, "mr2_key", `{"query":"q"}`)
			assert.Equal(t, tt.wantStatus, code)
			var env struct {
				Error struct {
					Message string `json:"message"`
					Code    string `json:"code"`
				} `json:"error"`
			}
			require.NoError(t, json.Unmarshal(body, &env), string(body))
			assert.Contains(t, env.Error.Message, tt.wantMsg)
			assert.NotContains(t, string(body), `"k"`, "the provider key is never echoed")
			assert.Equal(t, tt.wantRetry, h.Get("Retry-After") != "")
			require.Len(t, cp.releases, 1)
			assert.Equal(t, relay.OutcomeBackendError, cp.releases[0].Outcome)
			assert.Zero(t, cp.releases[0].Usage.Prompt, "a failed search is not charged")
		})
	}
}

func TestSearchRefusals(t *testing.T) {
	t.Parallel()
	srv := provider(t, "testdata/brave.json", func(*http.Request) { t.Error("the provider must not be asked") })
	p := &search.Brave{URL: srv.URL, APIKey: "k", Client: srv.Client()}
	tests := []struct {
		name, key, body string
		refuse          error
		want            int
	}{
		{name: "no key", body: `{"query":"q"}`, want: http.StatusUnauthorized},
		{name: "not json", key: "k", body: `{`, want: http.StatusBadRequest},
		{name: "no query", key: "k", body: `{}`, want: http.StatusBadRequest},
		{name: "blank query", key: "k", body: `{"query":"   "}`, want: http.StatusBadRequest},
		{name: "too many results", key: "k", body: `{"query":"q","max_results":51}`, want: http.StatusBadRequest},
		{name: "zero results", key: "k", body: `{"query":"q","max_results":0}`, want: http.StatusBadRequest},
		{name: "query too long", key: "k", body: `{"query":"` + strings.Repeat("é", 2001) + `"}`, want: http.StatusBadRequest},
		{name: "refused by the control plane", key: "k", body: `{"query":"q"}`, refuse: &cpclient.Error{Code: codes.Unauthenticated, Reason: relay.ReasonInvalidCredential, Message: "invalid API key"}, want: http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cp := &fakeCP{refuse: tt.refuse}
			code, _, body := serve(t, cp, p, search.Config{}, tt.key, tt.body)
			assert.Equal(t, tt.want, code, string(body))
			assert.Contains(t, string(body), `"error":{"message":`)
		})
	}
	code, _, _ := serve(t, &fakeCP{}, nil, search.Config{}, "k", `{"query":"q"}`)
	assert.Equal(t, http.StatusServiceUnavailable, code, "no provider configured")
}

func TestNewRequestDefaults(t *testing.T) {
	t.Parallel()
	r, err := search.NewRequest("q", 0, 10)
	require.NoError(t, err)
	assert.Equal(t, 10, r.MaxResults)
	_, err = search.NewRequest("q", 99, 10)
	var ce *canonical.Error
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "max_results", ce.Param)
}
