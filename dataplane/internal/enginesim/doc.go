// Package enginesim is a simulator of LLM inference engines for tests,
// benchmarks and the demo. It is not an inference engine: it generates
// deterministic text ("sim token 1 sim token 2 …") or replies scripted by a
// test, at a configurable pace, and nothing it says comes from a model.
//
// A Server stands in for one engine, chosen by Config.Engine:
//
//   - EngineOllama: Ollama's native API as served by Ollama 0.17.4 (GET /,
//     /api/version, /api/tags, /api/ps; POST /api/show, /api/chat,
//     /api/generate, /api/embed, /api/embeddings).
//   - EngineVLLM: vLLM's OpenAI-compatible server (GET /health, /version,
//     /metrics, /v1/models; POST /v1/chat/completions, /v1/completions,
//     /v1/embeddings, /v1/rerank, /rerank, /v1/score, /score, /tokenize).
//
// The bodies, streaming framings (NDJSON for Ollama, server-sent events for
// vLLM), status codes and error shapes follow the real engines field for
// field; testdata/recorded holds examples of the real shapes with their
// sources, and the package tests check the simulator against them. The
// simulator marks itself only where an engine reports its own identity
// (the version strings end in "-sim"); model names and content are not
// labelled, so a gateway that fronts a simulator must label its answers as
// simulated itself.
//
// Token accounting is exact and deterministic: every streamed chunk that
// carries text is one token, completion counts equal the number of such
// chunks, and prompt counts are estimated from the message text (see
// PromptTokens). Config.Script lets tests script replies: thinking, tool
// calls, finish reasons, engine errors in the engine's own shape, and a
// connection dropped in the middle of a stream.
package enginesim
