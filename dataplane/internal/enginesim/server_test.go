package enginesim_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/enginesim"
)

func TestParseModels(t *testing.T) {
	tests := []struct {
		in      string
		want    []enginesim.ModelSpec
		wantErr bool
	}{
		{"", nil, false},
		{"llama3.2:3b", []enginesim.ModelSpec{{Name: "llama3.2:3b"}}, false},
		{" a=4096 , b ", []enginesim.ModelSpec{{Name: "a", ContextLength: 4096}, {Name: "b"}}, false},
		{"nomic-embed-text", []enginesim.ModelSpec{{Name: "nomic-embed-text", Family: "bert", Capabilities: []string{"embedding"}, EmbeddingDim: 768}}, false},
		{"a=big", nil, true},
		{"a=0", nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := enginesim.ParseModels(tc.in)
			if tc.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestZeroConfigServesDefaultModel(t *testing.T) {
	s, url := start(t, enginesim.Config{})
	require.Equal(t, enginesim.EngineOllama, s.Engine())
	tags := decode(t, get(t, url+"/api/tags").Body)
	require.Equal(t, "sim-llama:latest", str(tags, "models", 0, "name"))
	show := decode(t, post(t, url+"/api/show", map[string]any{"model": "sim-llama"}).Body)
	require.Equal(t, 8192, num(show, "model_info", "llama.context_length"))
	require.Equal(t, []any{"completion", "tools"}, show["capabilities"])
}

func TestVLLMDropAndCancel(t *testing.T) {
	s, url := start(t, vllmCfg(enginesim.Config{Script: func(req enginesim.Request) *enginesim.Reply {
		if req.Messages[0].Content == "drop" {
			return &enginesim.Reply{Content: "a b c", ErrorMessage: enginesim.DropConnection}
		}
		return nil
	}, InterTokenDelay: 20 * time.Millisecond, CompletionTokens: 1000}))
	resp := post(t, url+"/v1/chat/completions", map[string]any{"stream": true, "messages": []map[string]any{{"role": "user", "content": "drop"}}})
	raw, err := io.ReadAll(resp.Body)
	require.Error(t, err, "the connection is cut")
	require.Equal(t, 2, strings.Count(string(raw), "data: "), "the role chunk and one token arrive")
	require.NotContains(t, string(raw), "[DONE]")

	ctx, cancel := context.WithCancel(context.Background())
	resp = postCtx(t, ctx, url+"/v1/chat/completions", map[string]any{"stream": true, "messages": userHi})
	_, err = resp.Body.Read(make([]byte, 16))
	require.NoError(t, err)
	cancel()
	require.Eventually(t, func() bool {
		st := s.Stats()
		return st.Cancelled == 1 && st.ActiveStreams == 0 && st.Dropped == 1
	}, 5*time.Second, 5*time.Millisecond)
}

func TestListenShutsDownGracefully(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, base, err := enginesim.Listen(ctx, "127.0.0.1:0", vllmCfg(enginesim.Config{InterTokenDelay: 50 * time.Millisecond, CompletionTokens: 1000}))
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(base, "http://127.0.0.1:"))
	require.Equal(t, http.StatusOK, get(t, base+"/health").StatusCode)

	resp := post(t, base+"/v1/chat/completions", map[string]any{"stream": true, "messages": userHi})
	_, err = resp.Body.Read(make([]byte, 16))
	require.NoError(t, err)
	cancel()
	select {
	case <-s.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("server did not stop")
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	require.Zero(t, s.Stats().ActiveStreams, "the stream in progress was ended")
	_, err = http.Get(base + "/health")
	require.Error(t, err, "the listener is closed")
}
