// Package vllm is the Engine for vLLM's OpenAI-compatible server (and any other
// OpenAI-compatible engine): POST {url}/v1/chat/completions. Streams are
// server-sent events; the engine always asks for the usage chunk
// (stream_options.include_usage) so that usage is exact, and emits it once at
// the end of the stream — whether the client sees it is the surface's choice.
// Tool-call argument fragments and reasoning text pass through as canonical
// chunks. Embeddings, rerank and score use POST {url}/v1/embeddings,
// /v1/rerank and /v1/score.
//
// It must not retry, choose backends or know client dialects.
package vllm
