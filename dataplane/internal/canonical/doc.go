// Package canonical is the one intermediate model of the data plane: every client
// dialect (surface) translates into it and every engine translates out of it, so
// adding a dialect or an engine is one adapter, not one per pair.
//
// The package owns the chat request (messages with text and image parts, tools and
// tool choice, sampling parameters, response format, streaming and thinking
// controls), the complete response, the streamed chunk, token usage and the
// dialect-neutral error kinds that surfaces map to their own envelopes.
//
// It must not do I/O, import a dialect or an engine, or know about the control
// plane: it is plain Go values and a few pure helpers.
package canonical
