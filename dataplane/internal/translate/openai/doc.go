// Package openai translates the OpenAI chat-completions dialect to and from the
// canonical model.
//
// Client side: DecodeChatRequest turns a POST /v1/chat/completions body into a
// canonical.Request (strict about what matters: model, messages, roles, value
// ranges); EncodeResponse and ChunkEncoder write chat.completion objects and
// chat.completion.chunk server-sent events; EncodeError writes the OpenAI error
// envelope; EncodeModelList writes GET /v1/models. The legacy and pooling
// endpoints have their own pairs: DecodeCompletionRequest with
// EncodeCompletion and CompletionChunkEncoder (text_completion objects and
// events), DecodeEmbeddingRequest with EncodeEmbeddingResponse (float or
// base64 vectors), DecodeRerankRequest/EncodeRerankResponse and
// DecodeScoreRequest/EncodeScoreResponse (vLLM's shapes).
//
// Engine side (vLLM and other OpenAI-compatible servers): EncodeUpstreamRequest,
// DecodeUpstreamResponse and ChunkDecoder speak the same dialect with vLLM's
// extras (top_k, min_p, repetition_penalty, chat_template_kwargs, reasoning);
// EncodeUpstreamEmbedding/Rerank/Score and their decoders speak vLLM's
// pooling API.
//
// The package does no I/O and must not import a surface, an engine or the
// control-plane contract.
package openai
