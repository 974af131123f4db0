// Package stream frames streamed HTTP bodies: it reads server-sent events (vLLM
// and other OpenAI-compatible engines) and newline-delimited JSON (Ollama) from
// backends, and writes both to clients, flushing after every frame.
//
// Readers are bounded: a line or event larger than the configured limit is an
// error, never an unbounded allocation. The package knows nothing about the
// JSON inside the frames and must not: decoding belongs to the translate
// packages.
package stream
