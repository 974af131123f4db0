package health

import (
	"testing"
)

func FuzzParseOllamaTags(f *testing.F) {
	f.Add([]byte(`{"models":[{"name":"llama3.2:latest","model":"llama3.2:latest","size":1,"digest":"abc","details":{"family":"llama"}}]}`))
	f.Add([]byte(`{"models":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		tags, err := parseOllamaTags(b)
		if err != nil {
			return
		}
		for _, tag := range tags {
			if tag.name() == "" {
				t.Fatalf("nameless tag kept: %+v", tag)
			}
		}
	})
}

func FuzzParseOllamaShow(f *testing.F) {
	f.Add([]byte(`{"parameters":"num_ctx 4096","details":{"family":"llama"},"model_info":{"general.architecture":"llama","llama.context_length":131072,"llama.embedding_length":3072},"capabilities":["completion","tools"]}`))
	f.Add([]byte(`{"model_info":{"general.architecture":"x","x.context_length":-5}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := parseOllamaShow(b)
		if err != nil {
			return
		}
		if s.ContextLength < 0 || s.EmbeddingLength < 0 || s.NumCtx < 0 {
			t.Fatalf("negative length: %+v", s)
		}
	})
}

func FuzzParseVLLMModels(f *testing.F) {
	f.Add([]byte(`{"object":"list","data":[{"id":"Qwen/Qwen3-8B","max_model_len":40960}]}`))
	f.Add([]byte(`{"data":[{"id":""},{"id":"a"},{"id":"a"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		specs, err := parseVLLMModels(b)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, s := range specs {
			if s.Name == "" || seen[s.Name] || s.ContextLength <= 0 || len(s.Capabilities) == 0 {
				t.Fatalf("bad spec: %+v", s)
			}
			seen[s.Name] = true
		}
	})
}
