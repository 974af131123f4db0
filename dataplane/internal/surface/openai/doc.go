// Package openai is the OpenAI-compatible HTTP surface: POST
// /v1/chat/completions (whole or streamed as server-sent events), POST
// /v1/completions (legacy text completions, served through chat), POST
// /v1/embeddings, POST /v1/rerank and /v1/score (vLLM's shapes) and GET
// /v1/models. It authenticates the request's shape (a key is present), decodes
// with translate/openai, hands the canonical request to the relay and writes
// the answer, the stream and every error in OpenAI's own shapes.
//
// All mapping of errors to the OpenAI envelope is in errors.go. The package
// must not call engines or the control plane's admission directly: the relay
// does.
package openai
