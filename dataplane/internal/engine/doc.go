// Package engine defines how the data plane calls an inference backend: the
// Engine interface (one chat call, whole or streamed, in canonical terms), the
// Target a lease points at, the Error that classifies a failed call as
// retryable on another backend or as a refusal to pass to the client, and the
// one shared HTTP transport every engine uses. Engines that can also embed
// implement Embedder (both), engines that rerank and score implement Ranker
// (vLLM only).
//
// Sub-packages implement Engine for each native API (ollama, vllm). An engine
// translates with a translate package and does the HTTP; it must not know about
// admission, retries, leases or client dialects — the relay owns those.
package engine
