// Package reasoning separates reasoning a model wrote inline, as a leading
// <think>…</think> block in its answer text, from the answer itself. Engines
// without a reasoning parser (vLLM started without --reasoning-parser, Ollama
// with a model it does not know to think) put the block in the content; the
// relay moves it to the canonical Reasoning field so that every dialect shows
// it as reasoning_content, thinking or a thinking block.
//
// Only a block at the very start of the answer (after optional whitespace) is
// taken: a "<think>" later in the text is the model's answer and is left as it
// is. The streaming Splitter holds back just enough text to recognise a tag
// split across chunks ("<th" + "ink>").
//
// The package is pure text processing: no I/O, no knowledge of dialects or
// engines.
package reasoning
