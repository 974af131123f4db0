// Package ollama translates Ollama's native dialect (Ollama 0.17: /api/chat
// and /api/generate with NDJSON streams, /api/embed and /api/embeddings, and
// the model endpoints) to and from the canonical model.
//
// Engine side, used by engine/ollama: EncodeUpstreamRequest,
// DecodeUpstreamResponse and StreamDecoder (which numbers Ollama's whole tool
// calls across the stream and gives each a stable id).
//
// Client side, for the Ollama surface: DecodeChat and DecodeGenerate (a
// generate becomes a chat; a body that only loads or unloads a model is a
// Load), EncodeAnswer and ChunkEncoder in the chat shape (message) or the
// generate shape (response), the latter buffering streamed argument fragments
// into whole calls with object arguments, as Ollama clients expect;
// DecodeEmbed, DecodeEmbeddings and their encoders in Ollama's own shapes;
// EncodeTags, EncodePS, EncodeShow and EncodeVersion from ModelCards; and
// EncodeError and AppendStreamError for {"error": "…"}.
//
// The package does no I/O and must not import a surface, an engine or the
// control-plane contract.
package ollama
