package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/e2e/internal/cluster"
	"github.com/mindrouter/mindrouter/dataplane/e2e/internal/ollamatest"
)

// registry serves one Ollama's model store over the registry protocol that
// `ollama pull` speaks: GET /v2/<ns>/<model>/manifests/<tag>, HEAD of a blob
// for its size, GET of a blob answered with a redirect to its "direct URL"
// on another host name (as the public registry redirects to its CDN), and
// ranged GETs of that URL. Real Ollama cannot reach the internet; this is
// the registry it pulls from.
type registry struct {
	dir   string // the source Ollama's OLLAMA_MODELS
	blobs atomic.Int64
	srv   *httptest.Server
}

func newRegistry(t *testing.T, modelsDir string) *registry {
	r := &registry{dir: modelsDir}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v2/library/{model}/manifests/{tag}", func(w http.ResponseWriter, req *http.Request) {
		b, err := os.ReadFile(filepath.Join(r.dir, "manifests", "registry.ollama.ai", "library", req.PathValue("model"), req.PathValue("tag")))
		if err != nil {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}`))
			return
		}
		w.Header().Set("Content-Type", "application/vnd.docker.distribution.manifest.v2+json")
		_, _ = w.Write(b)
	})
	blob := func(w http.ResponseWriter, req *http.Request) {
		d := req.PathValue("digest")
		if !strings.HasPrefix(d, "sha256:") || strings.ContainsAny(d, "/.") {
			http.NotFound(w, req)
			return
		}
		http.ServeFile(w, req, filepath.Join(r.dir, "blobs", strings.Replace(d, ":", "-", 1)))
	}
	mux.HandleFunc("HEAD /v2/library/{model}/blobs/{digest}", blob)
	mux.HandleFunc("GET /v2/library/{model}/blobs/{digest}", func(w http.ResponseWriter, req *http.Request) {
		u := *req.URL
		u.Scheme, u.Host, u.Path = "http", strings.Replace(req.Host, "127.0.0.1", "localhost", 1), "/direct/"+req.PathValue("digest")
		http.Redirect(w, req, u.String(), http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("GET /direct/{digest}", func(w http.ResponseWriter, req *http.Request) {
		r.blobs.Add(1)
		blob(w, req)
	})
	r.srv = httptest.NewServer(mux)
	t.Cleanup(r.srv.Close)
	return r
}

func envValue(env []string, key string) string {
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, key+"="); ok {
			return v
		}
	}
	return ""
}

type modelJob struct {
	ID             string `json:"id"`
	State          string `json:"state"`
	Status         string `json:"status"`
	Error          string `json:"error"`
	CompletedBytes string `json:"completed_bytes"`
	TotalBytes     string `json:"total_bytes"`
	Attempts       int    `json:"attempts"`
}

// watchJob follows a job through the data plane's admin REST watch stream
// (newline-delimited JSON) until it ends, and returns every state seen.
func watchJob(t *testing.T, ctx context.Context, c *cluster.Cluster, id string) []modelJob {
	t.Helper()
	var seen []modelJob
	adminLines(ctx, t, c, c.DataPlaneURL+"/api/admin/model-jobs/"+id+"/watch", func(text []byte) {
		var line struct {
			Result *struct {
				Job modelJob `json:"job"`
			} `json:"result"`
			Error json.RawMessage `json:"error"`
		}
		require.NoError(t, json.Unmarshal(text, &line), "one JSON object a line: %s", text)
		require.Nil(t, line.Error, "%s", text)
		require.NotNil(t, line.Result, string(text))
		seen = append(seen, line.Result.Job)
	})
	require.NotEmpty(t, seen)
	return seen
}

func gatewayModels(t *testing.T, ctx context.Context, c *cluster.Cluster) []string {
	t.Helper()
	var list struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	code, err := c.AdminJSON(ctx, c.DataPlaneURL, http.MethodGet, "/v1/models", nil, &list)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	var out []string
	for _, m := range list.Data {
		out = append(out, m.ID)
	}
	return out
}

// TestModelPullAndDeleteRealOllama pulls a model onto a real CPU Ollama
// through the admin API, from a registry of the test's own serving another
// real Ollama's store, follows the job to success, sees the model in the
// gateway's /v1/models and answering a chat, deletes it through the API and
// sees it gone.
func TestModelPullAndDeleteRealOllama(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	// The source's weights differ from the target's own tiny model (another
	// seed), so the target has to download them.
	src := ollamatest.Start(ctx, t, ollamatest.Options{ModelName: "src", Seed: 7})
	dst := ollamatest.Start(ctx, t, ollamatest.Options{})
	reg := newRegistry(t, envValue(src.Env(), "OLLAMA_MODELS"))
	require.NotEmpty(t, reg.dir)
	c := cluster.Start(t, cluster.Options{Backends: []cluster.Backend{{Name: "ollama-dst", Engine: "ollama", URL: dst.URL}}})

	model := strings.TrimPrefix(reg.srv.URL, "http://") + "/library/src:latest"
	require.NotContains(t, gatewayModels(t, ctx, c), model)

	var pulled struct{ Job modelJob }
	code, err := c.AdminJSON(ctx, c.DataPlaneURL, http.MethodPost, "/api/admin/backends/ollama-dst/ollama/pull",
		map[string]any{"model": model, "insecure": true}, &pulled)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code, c.Logs())
	require.Equal(t, "queued", pulled.Job.State)
	seen := watchJob(t, ctx, c, pulled.Job.ID)
	last := seen[len(seen)-1]
	require.Equal(t, "succeeded", last.State, "%+v\n%s\n%s", seen, c.Logs(), dst.Log())
	require.Equal(t, "success", last.Status)
	require.Equal(t, 1, last.Attempts)
	require.Positive(t, reg.blobs.Load(), "the weights were downloaded from the registry")
	require.Contains(t, gatewayModels(t, ctx, c), model, "the catalog was refreshed after the pull")

	var chat struct {
		Choices []struct {
			Message      struct{ Content string }
			FinishReason string `json:"finish_reason"`
		}
		Usage struct {
			CompletionTokens int `json:"completion_tokens"`
		}
	}
	code, err = c.AdminJSON(ctx, c.DataPlaneURL, http.MethodPost, "/v1/chat/completions", map[string]any{
		"model": model, "max_tokens": 4, "messages": []map[string]string{{"role": "user", "content": "hello"}}}, &chat)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code, c.Logs())
	require.Len(t, chat.Choices, 1)
	require.Positive(t, chat.Usage.CompletionTokens, "the pulled model generated: %+v", chat)
	require.NotEmpty(t, chat.Choices[0].FinishReason, "%+v", chat)

	var deleted struct{ Job modelJob }
	code, err = c.AdminJSON(ctx, c.DataPlaneURL, http.MethodPost, "/api/admin/backends/ollama-dst/ollama/delete", map[string]any{"model": model}, &deleted)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	seen = watchJob(t, ctx, c, deleted.Job.ID)
	require.Equal(t, "succeeded", seen[len(seen)-1].State, "%+v", seen)
	require.NotContains(t, gatewayModels(t, ctx, c), model, "the catalog was refreshed after the delete")
	require.Contains(t, gatewayModels(t, ctx, c), "tiny:latest", "the backend's other model stays")

	// A model the registry does not have fails at once with Ollama's word.
	code, err = c.AdminJSON(ctx, c.DataPlaneURL, http.MethodPost, "/api/admin/backends/ollama-dst/ollama/pull",
		map[string]any{"model": strings.TrimPrefix(reg.srv.URL, "http://") + "/library/nosuch:latest", "insecure": true}, &pulled)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	seen = watchJob(t, ctx, c, pulled.Job.ID)
	last = seen[len(seen)-1]
	require.Equal(t, "failed", last.State, "%+v", seen)
	require.NotEmpty(t, last.Error)
	t.Logf("pull of a missing model: attempts %d, error %q", last.Attempts, last.Error)
}
