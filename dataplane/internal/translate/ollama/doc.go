// Package ollama translates Ollama's native chat dialect (/api/chat, NDJSON
// streams) to and from the canonical model.
//
// Engine side, used by engine/ollama: EncodeUpstreamRequest,
// DecodeUpstreamResponse and StreamDecoder (which numbers Ollama's whole tool
// calls across the stream and gives each a stable id). Client side, for the
// Ollama surface: DecodeChatRequest, EncodeResponse, ChunkEncoder (which
// buffers streamed argument fragments into whole calls, as Ollama clients
// expect) and EncodeError.
//
// The package does no I/O and must not import a surface, an engine or the
// control-plane contract.
package ollama
