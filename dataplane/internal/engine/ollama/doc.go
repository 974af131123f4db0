// Package ollama is the Engine for Ollama's native API: POST {url}/api/chat with
// an explicit stream flag, options.num_ctx set to the lease's context window
// (Ollama otherwise loads models with a small default window) and
// options.num_predict from the output limit. Streams are NDJSON; Ollama's whole
// tool calls become tool-call chunks with stable indexes and ids, and usage is
// Ollama's exact prompt_eval_count and eval_count. Ollama has no n: n choices
// are n calls one after the other. A thinking level is sent only to gpt-oss
// (Ollama refuses one for other models). Embeddings use POST {url}/api/embed.
//
// It must not retry, choose backends or know client dialects.
package ollama
